"""The communication service: splitting, retries on 429/5xx, refusals recorded (63016, 21211), the
in-flight window after a lost answer, and the sandbox outbox. Twilio is intercepted with ``responses``
or answered by the emulated Twilio."""

from __future__ import annotations

import json

import pytest
import responses

from bot.messaging.outbox import Outbox
from bot.messaging.sender import SendPolicy, WhatsAppSender
from bot.messaging.split import split_message
from bot.messaging.twilio_gateway import TwilioGateway
from bot.store import Store
from tests.support import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, CUSTOMER, WEBHOOK_URL, FakeClock, sign, wait_until

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def twilio_message(sid: str = "SM" + "1" * 32, body: str = "hi") -> dict:
    return {"sid": sid, "status": "queued", "body": body, "to": f"whatsapp:{CUSTOMER}", "account_sid": ACCOUNT_SID}


def twilio_error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class Setup:
    def __init__(self, store: Store, gateway: TwilioGateway | None) -> None:
        self.clock = FakeClock()
        self.sleeps: list[float] = []
        self.outbox = Outbox(store, self.clock)
        self.sender = WhatsAppSender(self.outbox, gateway, None, SendPolicy(), self.clock, self.sleeps.append)
        self.store = store

    def record(self, bodies: list[str], key: str = "1:reply") -> list:
        with self.store.immediate() as db:
            self.outbox.add(db, key=key, inbound_id=1, customer_id=CUSTOMER, to_number=f"whatsapp:{CUSTOMER}",
                            kind="reply", bodies=bodies)  # fmt: skip
        return self.outbox.for_inbound(1)

    def deliver(self):
        return self.sender.deliver(self.outbox.for_inbound(1), lambda db: None)


@pytest.fixture
def setup(store: Store) -> Setup:
    return Setup(store, TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, timeout_s=5))


# --- splitting --------------------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_message("Bonjour ! Où êtes-vous ?") == ["Bonjour ! Où êtes-vous ?"]


def test_long_text_is_cut_after_whole_sentences() -> None:
    sentences = [f"Phrase numéro {i} qui décrit une étape du dépannage." for i in range(80)]
    text = " ".join(sentences)

    parts = split_message(text)

    assert len(text) > 1600 and len(parts) == 3
    assert all(len(part) <= 1600 for part in parts)
    assert all(part.endswith(".") for part in parts)  # no sentence is cut in two
    assert " ".join(parts) == text  # nothing lost


def test_sentence_longer_than_the_limit_is_cut_at_spaces_and_a_giant_word_anywhere() -> None:
    words = " ".join(["mot"] * 700)  # one 2799-character sentence
    url = "https://example.com/" + "x" * 2000

    assert all(len(p) <= 1600 for p in split_message(words)) and " ".join(split_message(words)) == words
    assert "".join(split_message(url)) == url


def test_line_breaks_are_boundaries_too() -> None:
    text = "\n".join(["Étape " + "a" * 900] * 3)

    parts = split_message(text)

    assert [len(p) for p in parts] == [906, 906, 906]


def test_long_reply_arrives_as_ordered_parts_through_emulated_twilio(make_harness) -> None:
    paragraph = " ".join(f"Conseil {i} : coupez l'arrivée d'eau avant de toucher au robinet." for i in range(60))

    def long_model(request) -> str:
        return json.dumps({"language": "fr", "reply": paragraph, "service_type": "plomberie"})

    harness = make_harness(responder=long_model)
    harness.whatsapp("Bonjour, mon robinet fuit")
    harness.drain()

    sent = harness.sent()
    assert len(paragraph) > 3200 and len(sent) == 3 and all(len(body) <= 1600 for body in sent)
    assert " ".join(sent) == paragraph
    assert harness.inbound_statuses() == ["done"]


# --- retries and refusals (responses) ---------------------------------------------------------------------


@responses.activate
def test_429_then_success_is_retried_with_backoff(setup: Setup) -> None:
    responses.post(MESSAGES_URL, json=twilio_error(429, 20429, "Too Many Requests"), status=429)
    responses.post(MESSAGES_URL, json=twilio_message(), status=201)
    setup.record(["Bonjour"])

    delivery = setup.deliver()

    assert delivery.settled
    assert len(responses.calls) == 2
    assert setup.sleeps == [0.5]
    [row] = setup.outbox.for_inbound(1)
    assert (row.status, row.twilio_sid, row.attempts) == ("queued", "SM" + "1" * 32, 2)
    sent = responses.calls[1].request
    assert sent.headers["Authorization"].startswith("Basic ")
    assert "Body=Bonjour" in sent.body and "To=whatsapp%3A%2B237699000001" in sent.body


@responses.activate
def test_retry_after_from_twilio_is_honoured_within_a_cap(setup: Setup) -> None:
    responses.post(
        MESSAGES_URL, json=twilio_error(429, 20429, "Too Many Requests"), status=429, headers={"Retry-After": "3"}
    )
    responses.post(MESSAGES_URL, json=twilio_message(), status=201)
    setup.record(["Bonjour"])

    assert setup.deliver().settled
    assert setup.sleeps == [3.0]


@responses.activate
def test_5xx_burst_leaves_the_row_for_later_then_it_goes(setup: Setup) -> None:
    for _ in range(3):
        responses.post(MESSAGES_URL, json=twilio_error(503, 20503, "Service Unavailable"), status=503)
    setup.record(["Bonjour"])

    delivery = setup.deliver()

    assert not delivery.settled and delivery.retry_at == setup.clock() + 10
    assert setup.sleeps == [0.5, 1.0]
    [row] = setup.outbox.for_inbound(1)
    assert row.status == "pending" and row.error_code == 20503
    assert not setup.deliver().settled and len(responses.calls) == 3  # not due yet: no call

    responses.post(MESSAGES_URL, json=twilio_message(), status=201)
    setup.clock.advance(10)
    assert setup.deliver().settled and len(responses.calls) == 4


@pytest.mark.parametrize(
    ("status", "code", "message", "reason"),
    [
        (400, 63016, "Failed to send freeform message because you are outside the allowed window.", "24-hour window"),
        (400, 21211, "Invalid 'To' Phone Number: whatsapp:+237699000001", "not a valid phone number"),
    ],
)
@responses.activate
def test_refusal_is_recorded_with_its_reason_and_not_retried(
    setup: Setup, status: int, code: int, message: str, reason: str
) -> None:
    responses.post(MESSAGES_URL, json=twilio_error(status, code, message), status=status)
    setup.record(["Bonjour"])

    assert setup.deliver().settled

    [row] = setup.outbox.for_inbound(1)
    assert (row.status, row.error_code) == ("failed", code)
    assert reason in row.error_reason and message in row.error_reason
    assert len(responses.calls) == 1 and setup.sleeps == []


@responses.activate
def test_parts_are_sent_in_order_and_a_waiting_part_holds_back_the_next(setup: Setup) -> None:
    responses.post(MESSAGES_URL, json=twilio_message("SM" + "a" * 32, "one"), status=201)
    for _ in range(3):
        responses.post(MESSAGES_URL, json=twilio_error(500, 20500, "Internal Server Error"), status=500)
    setup.record(["one", "two", "three"])

    delivery = setup.deliver()

    assert not delivery.settled
    assert [r.status for r in setup.outbox.for_inbound(1)] == ["queued", "pending", "pending"]
    assert all("Body=three" not in call.request.body for call in responses.calls)


# --- the emulated Twilio ------------------------------------------------------------------------------------


def test_63016_from_a_status_callback_is_recorded(make_harness, live_server) -> None:
    harness = make_harness(PUBLIC_BASE_URL=live_server.url)
    live_server.app = harness.app
    harness.emulator.twilio.set_callbacks(True)
    harness.emulator.twilio.set_fault("outside_window")  # WhatsApp accepts the call, then fails the message
    harness.whatsapp("Bonjour, j'ai une fuite", signed_url=live_server.url + "/webhook/whatsapp")
    harness.drain()

    db = harness.runtime.store.db
    wait_until(lambda: db.execute("select status from outbound_messages").fetchone()[0] == "failed")
    code, reason = db.execute("select error_code, error_reason from outbound_messages").fetchone()
    assert code == 63016 and "24-hour window" in reason


def test_answer_lost_after_twilio_accepted_is_not_sent_twice(make_harness) -> None:
    harness = make_harness(TWILIO_TIMEOUT_S="0.3")
    harness.emulator.twilio.set_latency(2)  # Twilio takes the message, its answer comes after our timeout
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()
    assert len(harness.emulator.twilio.messages()) == 1
    assert harness.runtime.store.db.execute("select status from outbound_messages").fetchone()[0] == "in_flight"

    harness.emulator.twilio.set_latency(0)
    harness.clock.advance(60)
    harness.drain()

    [row] = list(harness.runtime.store.db.query("select status, twilio_sid from outbound_messages"))
    assert len(harness.emulator.twilio.messages()) == 1  # found at Twilio, not sent again
    assert row["twilio_sid"] == harness.emulator.twilio.messages()[0]["sid"]
    assert harness.inbound_statuses() == ["done"]


def test_without_twilio_credentials_replies_are_kept_as_sandbox_messages(make_harness) -> None:
    harness = make_harness(TWILIO_ACCOUNT_SID="", TWILIO_WHATSAPP_NUMBER="")
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()

    assert harness.emulator.twilio.request_count() == 0
    [row] = list(harness.runtime.store.db.query("select status, body from outbound_messages"))
    assert row["status"] == "sandbox" and "quartier" in row["body"]
    assert harness.inbound_statuses() == ["done"]


def test_emulated_twilio_refuses_wrong_credentials(make_harness) -> None:
    harness = make_harness(TWILIO_AUTH_TOKEN="not-the-token")
    # The webhook is signed with the app's (wrong) token here, so sign with it too.
    form = {"MessageSid": "SM" + "9" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "Bonjour, fuite d'eau"}
    harness.client.post(
        WEBHOOK_URL, data=form, headers={"X-Twilio-Signature": sign(WEBHOOK_URL, form, "not-the-token")}
    )
    harness.drain()

    code, reason = harness.runtime.store.db.execute("select error_code, error_reason from outbound_messages").fetchone()
    assert code == 20003 and "TWILIO_AUTH_TOKEN" in reason and "not-the-token" not in reason


def test_emulated_twilio_control_api_and_limits(emulator) -> None:
    import httpx

    base = emulator.base_url
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    url = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    form = {"To": f"whatsapp:{CUSTOMER}", "From": f"whatsapp:{BOT_NUMBER}", "Body": "hi"}

    assert httpx.post(f"{base}/_emulator/twilio/faults", json={"fault": "rate_limited", "times": 1}).status_code == 200
    limited = httpx.post(url, data=form, auth=auth)
    accepted = httpx.post(url, data=form, auth=auth)
    too_long = httpx.post(url, data={**form, "Body": "x" * 1601}, auth=auth)
    unauthenticated = httpx.post(url, data=form)
    listed = httpx.get(f"{base}/_emulator/twilio/messages").json()["messages"]

    assert (limited.status_code, limited.json()["code"], limited.headers["retry-after"]) == (429, 20429, "1")
    assert accepted.status_code == 201 and accepted.json()["sid"].startswith("SM")
    assert accepted.json()["status"] == "queued" and accepted.json()["direction"] == "outbound-api"
    assert (too_long.status_code, too_long.json()["code"]) == (400, 21617)
    assert (unauthenticated.status_code, unauthenticated.json()["code"]) == (401, 20003)
    assert [m["sid"] for m in listed] == [accepted.json()["sid"]]


# --- no stale overwrite, no in_flight row left behind -------------------------------------------------------


@responses.activate
def test_status_callback_that_beats_twilios_answer_is_not_overwritten(setup: Setup) -> None:
    [row] = setup.record(["Bonjour"])
    sid = "SM" + "2" * 32

    def twilio_takes_it(request):
        # Twilio's 'delivered' callback reaches us (by the outbound id in its URL) before its 201 does.
        assert setup.outbox.record_status(sid, "delivered", None, None, outbound_id=row.id)
        return 201, {}, json.dumps(twilio_message(sid))

    responses.add_callback(responses.POST, MESSAGES_URL, callback=twilio_takes_it)

    assert setup.deliver().settled

    [after] = setup.outbox.for_inbound(1)
    assert (after.status, after.twilio_sid) == ("delivered", sid)


def test_a_send_that_stalled_past_its_turn_cannot_move_the_row_back(setup: Setup) -> None:
    [row] = setup.record(["Bonjour"])
    stalled = setup.outbox.mark_in_flight(row.id, lambda db: None)
    # Its in-flight window passed: another sender found nothing at Twilio and sent it again.
    assert setup.outbox.mark_pending(row.id, stalled, 0.0, "not found at Twilio after an interrupted send")
    resend = setup.outbox.mark_in_flight(row.id, lambda db: None)
    assert setup.outbox.mark_accepted(row.id, resend, "SM" + "3" * 32, "queued")

    moved = setup.outbox.mark_pending(row.id, stalled, 0.0, "503 from Twilio")  # the stalled send wakes up

    [after] = setup.outbox.for_inbound(1)
    assert not moved and (after.status, after.twilio_sid) == ("queued", "SM" + "3" * 32)


@responses.activate
def test_dropped_in_flight_row_twilio_cannot_be_asked_about_does_not_hold_anything_back(setup: Setup) -> None:
    [row] = setup.record(["Nous avons bien reçu votre demande."])
    setup.outbox.mark_in_flight(row.id, lambda db: None)  # its sender died during the call
    responses.get(MESSAGES_URL, json=twilio_error(500, 20500, "Internal Server Error"), status=500)
    setup.clock.advance(60)

    delivery = setup.sender.settle_dropped(setup.outbox.for_inbound(1), "superseded by the reply")

    [after] = setup.outbox.for_inbound(1)
    assert delivery.settled and after.status == "failed" and "could not be asked" in after.error_reason
    assert [call.request.method for call in responses.calls] == ["GET"]  # looked up, never sent again


def holding_then_answer(harness, leave_in_flight) -> list[dict]:
    for provider in ("claude", "gemini", "openai"):
        harness.emulator.set_fault(provider, "server_error")
    leave_in_flight(harness)
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()
    [holding] = harness.runtime.outbox.for_inbound(1, kind="holding")
    if holding.status == "pending":  # Twilio refused it for now: a worker then dies just after taking it
        assert harness.runtime.outbox.mark_in_flight(holding.id, lambda db: None)
    assert harness.runtime.outbox.get(holding.id).status == "in_flight"

    for provider in ("claude", "gemini", "openai"):
        harness.emulator.clear_fault(provider)
    harness.emulator.twilio.set_latency(0)
    harness.emulator.twilio.set_fault(None)
    harness.clock.advance(600)
    harness.drain()
    return list(harness.runtime.store.db.query("select kind, status, twilio_sid from outbound_messages order by id"))


def test_in_flight_holding_reply_twilio_has_is_recorded_when_the_answer_goes(make_harness) -> None:
    harness = make_harness(TWILIO_TIMEOUT_S="0.3")

    rows = holding_then_answer(harness, lambda h: h.emulator.twilio.set_latency(2))

    sent = harness.emulator.twilio.messages()
    assert [m["sid"] for m in sent] == [rows[0]["twilio_sid"], rows[1]["twilio_sid"]]  # each once
    assert [(r["kind"], r["status"]) for r in rows] == [("holding", "queued"), ("reply", "queued")]
    assert harness.inbound_statuses() == ["done"]


def test_in_flight_holding_reply_twilio_never_got_is_dropped_not_sent_after_the_answer(make_harness) -> None:
    harness = make_harness()

    rows = holding_then_answer(harness, lambda h: h.emulator.twilio.set_fault("server_error"))

    assert [(r["kind"], r["status"]) for r in rows] == [("holding", "failed"), ("reply", "queued")]
    assert len(harness.sent()) == 1 and "quartier" in harness.sent()[0]
    assert harness.inbound_statuses() == ["done"]
