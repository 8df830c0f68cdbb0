"""Replays of signed Twilio webhooks (issue 7, defect 1).

Twilio signs the URL followed by every field's name and value, sorted by name, with no separator. A captured
request can therefore be re-cut: ``MessageSid=<sid>NumMedia0NumSegments1`` with ``NumMedia`` and
``NumSegments`` dropped concatenates to the same string, so the original signature still matches. Such a
request is refused for its SID's shape; and whatever its SID, a signed payload already stored is never a new
message: no second row, no model call, no second reply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import pytest
from werkzeug.datastructures import MultiDict

from bot.inbound import InboundMessage, InboundQueue
from bot.whatsapp import twilio_form
from bot.whatsapp.settings import WhatsAppSettings
from bot.whatsapp.signatures import SignatureRefused, signed_payload, verify_signature
from tests.support import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, CUSTOMER, WEBHOOK_URL, Harness, sign

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def captured_form(sid: str | None = None, body: str = "Bonjour, j'ai une fuite d'eau") -> dict[str, str]:
    """An inbound WhatsApp message as Twilio posts it, fields included."""
    sid = sid or f"SM{uuid.uuid4().hex}"
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": f"whatsapp:{CUSTOMER}",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Client",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": f"whatsapp:{BOT_NUMBER}",
        "WaId": CUSTOMER.lstrip("+"),
    }


def recut(form: dict[str, str]) -> dict[str, str]:
    """The shifted-boundary attack: NumMedia and NumSegments moved into the MessageSid's value."""
    shifted = {name: value for name, value in form.items() if name not in ("NumMedia", "NumSegments")}
    shifted["MessageSid"] = form["MessageSid"] + "NumMedia0NumSegments1"
    return shifted


def post(harness: Harness, form: dict[str, str], signature: str, url: str = WEBHOOK_URL):
    return harness.client.post(url, data=form, headers={"X-Twilio-Signature": signature})


def rows(harness: Harness) -> list[dict]:
    return list(harness.runtime.store.db.query("select * from inbound_messages order by id"))


def expected_digest(url: str, form: dict[str, str]) -> str:
    """Written out here rather than taken from the code under test: URL + name + value, sorted by name."""
    return hashlib.sha256((url + "".join(name + form[name] for name in sorted(form))).encode()).hexdigest()


def test_the_recut_request_really_carries_a_valid_signature() -> None:
    form = captured_form()

    assert sign(WEBHOOK_URL, recut(form)) == sign(WEBHOOK_URL, form)


def test_shifted_boundary_replay_gets_no_second_reply_and_no_second_row(harness: Harness) -> None:
    form = captured_form()
    signature = sign(WEBHOOK_URL, form)
    assert post(harness, form, signature).status_code == 200
    harness.drain()
    model_calls = harness.emulator.call_count()

    replayed = post(harness, recut(form), signature)  # the captured signature, unchanged
    harness.drain()

    assert replayed.status_code == 400
    assert "MessageSid must be SM or MM followed by 32 lowercase hex digits" in replayed.json["detail"]
    assert [row["message_sid"] for row in rows(harness)] == [form["MessageSid"]]
    assert harness.emulator.call_count() == model_calls
    assert len(harness.sent()) == 1


def test_a_signed_payload_is_processed_once_whatever_its_sid(harness: Harness, monkeypatch) -> None:
    # Defence in depth: with the SID checks of step 1 switched off, the digest of what Twilio signed still
    # recognises the re-cut payload. It is acknowledged like a redelivery: empty TwiML, nothing stored, nobody woken.
    monkeypatch.setattr(twilio_form, "twilio_message_sid", lambda form: form["MessageSid"])
    form = captured_form()
    signature = sign(WEBHOOK_URL, form)
    assert post(harness, form, signature).status_code == 200
    harness.drain()
    model_calls = harness.emulator.call_count()
    wakes: list[None] = []
    monkeypatch.setattr(harness.runtime, "wake_workers", lambda: wakes.append(None))

    replayed = post(harness, recut(form), signature)
    harness.drain()

    assert (replayed.status_code, replayed.get_data(as_text=True)) == (200, EMPTY_TWIML)
    assert [row["message_sid"] for row in rows(harness)] == [form["MessageSid"]]
    assert wakes == []
    assert harness.emulator.call_count() == model_calls
    assert len(harness.sent()) == 1


def test_plain_redelivery_is_acknowledged_and_stored_once_with_the_digest_of_what_was_signed(harness: Harness) -> None:
    form = captured_form()
    signature = sign(WEBHOOK_URL, form)

    first = post(harness, form, signature)
    second = post(harness, form, signature)  # Twilio retried before the answer
    harness.drain()
    model_calls = harness.emulator.call_count()
    third = post(harness, form, signature)  # and again, after it
    harness.drain()

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert {r.get_data(as_text=True) for r in (first, second, third)} == {EMPTY_TWIML}
    [row] = rows(harness)
    assert row["payload_digest"] == expected_digest(WEBHOOK_URL, form)
    assert row["status"] == "done"
    assert harness.emulator.call_count() == model_calls
    assert len(harness.sent()) == 1


@pytest.mark.parametrize(
    "sid",
    [
        "SM" + "A" * 32,  # upper-case hex
        "SM" + "0" * 31,  # too short
        "SM" + "0" * 33,  # too long
        "SM" + "g" * 32,  # not hex
        "XX" + "0" * 32,  # not a message
        "MG" + "0" * 32,  # a Messaging Service, not a message
        "SM" + "0" * 32 + "\n",  # "$" alone would let a trailing newline through
        "SM1",
    ],
)
def test_sid_not_in_twilios_format_is_a_400_and_nothing_is_stored(harness: Harness, sid: str) -> None:
    form = captured_form(sid)

    response = post(harness, form, sign(WEBHOOK_URL, form))

    assert response.status_code == 400
    assert "MessageSid must be SM or MM followed by 32 lowercase hex digits" in response.json["detail"]
    assert rows(harness) == []


def test_mms_sid_is_accepted(harness: Harness) -> None:
    form = captured_form("MM" + "1" * 32)

    assert post(harness, form, sign(WEBHOOK_URL, form)).status_code == 200
    assert [row["message_sid"] for row in rows(harness)] == ["MM" + "1" * 32]


@pytest.mark.parametrize("alias", ["SmsMessageSid", "SmsSid"])
def test_sid_alias_that_differs_from_message_sid_is_a_400(harness: Harness, alias: str) -> None:
    form = {**captured_form(), alias: f"SM{uuid.uuid4().hex}"}

    response = post(harness, form, sign(WEBHOOK_URL, form))

    assert response.status_code == 400
    assert f"{alias} " in response.json["detail"] and "differs from MessageSid" in response.json["detail"]
    assert rows(harness) == []


def test_sms_message_sid_alone_is_held_to_the_same_format(harness: Harness) -> None:
    valid = {k: v for k, v in captured_form().items() if k != "MessageSid"}
    malformed = {**valid, "SmsMessageSid": valid["SmsMessageSid"] + "NumMedia0", "SmsSid": "SM" + "2" * 32}

    accepted = post(harness, valid, sign(WEBHOOK_URL, valid))
    refused = post(harness, malformed, sign(WEBHOOK_URL, malformed))

    assert accepted.status_code == 200
    assert refused.status_code == 400 and "SmsMessageSid must be SM or MM" in refused.json["detail"]
    assert [row["message_sid"] for row in rows(harness)] == [valid["SmsMessageSid"]]


# --- the digest itself --------------------------------------------------------------------------------------


def test_signed_payload_is_exactly_what_twilio_signs() -> None:
    # Repeated names and values, and text that is not ASCII: compute_signature collapses duplicates and sorts.
    params = MultiDict([("Body", "fuite d'eau à Akwa"), ("MediaUrl0", "b"), ("MediaUrl0", "a"), ("MediaUrl0", "b")])
    validator_signature = sign(WEBHOOK_URL, params)
    own = hmac.new(AUTH_TOKEN.encode(), signed_payload(WEBHOOK_URL, params).encode(), hashlib.sha1).digest()

    assert base64.b64encode(own).decode() == validator_signature
    assert signed_payload(WEBHOOK_URL, params) == WEBHOOK_URL + "Bodyfuite d'eau à AkwaMediaUrl0aMediaUrl0b"


def test_every_url_the_validator_accepts_gives_the_same_digest() -> None:
    # RequestValidator accepts the signed URL with any port stripped: the digest names the URL that was signed.
    settings = WhatsAppSettings.from_env({"TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    form = captured_form()
    headers = {"X-Twilio-Signature": sign(WEBHOOK_URL, form)}

    digests = {
        verify_signature(settings, url, form, headers)
        for url in (WEBHOOK_URL, "http://localhost:80/webhook/whatsapp", "http://localhost:8080/webhook/whatsapp")
    }

    assert digests == {expected_digest(WEBHOOK_URL, form)}
    with pytest.raises(SignatureRefused):
        verify_signature(settings, "http://localhost/webhook/whatsapp?x=1", form, headers)


def test_queue_dedups_by_digest_and_lets_messages_without_one_through(harness: Harness) -> None:
    queue = InboundQueue(harness.runtime.store)
    digest = hashlib.sha256(b"signed").hexdigest()
    first = InboundMessage(message_sid="SM" + "3" * 32, customer_id=CUSTOMER, body="hi", payload_digest=digest)
    recut_sid = InboundMessage(message_sid="SM" + "4" * 32, customer_id=CUSTOMER, body="hi", payload_digest=digest)
    chats = [InboundMessage(message_sid=f"chat:{uuid.uuid4().hex}", customer_id="chat:a", body="hi") for _ in "ab"]

    stored_id, created = queue.enqueue(first)
    assert queue.enqueue(recut_sid) == (stored_id, False)
    assert [queue.enqueue(chat)[1] for chat in chats] == [True, True]  # no digest: NULLs never collide
    claim = queue.claim("test", lease_s=60, customer_id=CUSTOMER)

    assert created
    assert claim is not None and claim.message.payload_digest == digest
    assert [(r["message_sid"], r["payload_digest"]) for r in rows(harness)] == [
        (first.message_sid, digest),
        (chats[0].message_sid, None),
        (chats[1].message_sid, None),
    ]
