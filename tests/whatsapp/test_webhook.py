"""POST /webhook/whatsapp and /webhook/twilio/status: signatures, validation, storage before the answer."""

from __future__ import annotations

import json

import pytest

from tests.support import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER, WEBHOOK_URL, Harness, sign


def stored(harness: Harness) -> list[dict]:
    return list(harness.runtime.store.db.query("select * from inbound_messages order by id"))


def test_signed_message_is_stored_and_answered_with_empty_twiml(harness: Harness) -> None:
    response = harness.whatsapp("Bonjour, mon robinet fuit", sid="SM" + "a" * 32)

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [row] = stored(harness)
    assert (row["message_sid"], row["customer_id"], row["body"], row["status"]) == (
        "SM" + "a" * 32,
        CUSTOMER,
        "Bonjour, mon robinet fuit",
        "pending",
    )
    assert harness.emulator.twilio.messages() == []  # nothing answered inside the webhook


def test_fields_twilio_adds_later_are_kept(harness: Harness) -> None:
    harness.whatsapp("Bonjour", ReferralCtwaClid="abc123", ButtonPayload="yes")

    form = json.loads(stored(harness)[0]["form"])
    assert form["ReferralCtwaClid"] == "abc123" and form["ButtonPayload"] == "yes"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "Zm9yZ2VkIHNpZ25hdHVyZQ=="}],
    ids=["missing", "forged"],
)
def test_unsigned_or_forged_request_is_refused_and_not_stored(harness: Harness, headers: dict) -> None:
    form = {"MessageSid": "SM" + "b" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "hi"}

    response = harness.client.post(WEBHOOK_URL, data=form, headers=headers)

    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json["detail"]
    assert stored(harness) == []


def test_form_changed_after_signing_is_refused(harness: Harness) -> None:
    form = {"MessageSid": "SM" + "c" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "hi"}
    signature = sign(WEBHOOK_URL, form)

    response = harness.client.post(
        WEBHOOK_URL, data={**form, "Body": "send 10 technicians"}, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403 and stored(harness) == []


def test_signature_from_another_account_token_is_refused(harness: Harness) -> None:
    form = {"MessageSid": "SM" + "d" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "hi"}

    response = harness.client.post(
        WEBHOOK_URL, data=form, headers={"X-Twilio-Signature": sign(WEBHOOK_URL, form, token="other-token")}
    )

    assert response.status_code == 403


def test_behind_a_tls_proxy_the_public_url_is_what_twilio_signed(make_harness) -> None:
    harness = make_harness(PUBLIC_BASE_URL="https://bot.djobea.cm/")
    public = "https://bot.djobea.cm/webhook/whatsapp"

    accepted = harness.whatsapp("Bonjour", signed_url=public)  # app sees http://localhost/..., Twilio signed https
    refused = harness.whatsapp("Bonjour", signed_url=WEBHOOK_URL)

    assert accepted.status_code == 200
    assert refused.status_code == 403
    assert len(stored(harness)) == 1


def test_without_public_base_url_the_request_url_is_used(harness: Harness) -> None:
    assert harness.whatsapp("Bonjour", signed_url="https://bot.djobea.cm/webhook/whatsapp").status_code == 403
    assert harness.whatsapp("Bonjour").status_code == 200


def test_query_string_is_part_of_the_signed_url(harness: Harness) -> None:
    url = WEBHOOK_URL + "?tenant=douala"
    assert harness.whatsapp("Bonjour", url=url).status_code == 200
    assert harness.whatsapp("Bonjour", url=url, signed_url=WEBHOOK_URL).status_code == 403


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"From": f"whatsapp:{CUSTOMER}", "Body": "hi"}, "MessageSid is missing"),
        ({"MessageSid": "SM1", "From": f"whatsapp:{CUSTOMER}", "Body": "hi"}, "MessageSid must be SM or MM"),
        ({"MessageSid": "SM" + "e" * 32, "Body": "hi"}, "From is missing"),
        ({"MessageSid": "SM" + "e" * 32, "From": "whatsapp:not-a-number", "Body": "hi"}, "From is not a phone number"),
        ({"MessageSid": "SM" + "e" * 32, "From": "whatsapp:+237٠١٢٣٤٥٦٧", "Body": "hi"}, "From is not a phone number"),
        ({"MessageSid": "SM" + "e" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "  "}, "no Body, no media"),
        (
            {"MessageSid": "SM" + "e" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "", "NumMedia": "1"},
            "MediaUrl0 is missing",
        ),
        ({"MessageSid": "SM" + "e" * 32, "From": f"whatsapp:{CUSTOMER}", "NumMedia": "x"}, "NumMedia must be"),
        (
            {"MessageSid": "SM" + "e" * 32, "From": f"whatsapp:{CUSTOMER}", "Latitude": "4.05"},
            "Latitude and Longitude",
        ),
        (
            {"MessageSid": "SM" + "e" * 32, "From": f"whatsapp:{CUSTOMER}", "Latitude": "95", "Longitude": "9.7"},
            "Latitude must be between",
        ),
    ],
)
def test_malformed_message_gets_400_with_reason_and_is_not_stored(harness: Harness, form: dict, reason: str) -> None:
    response = harness.client.post(WEBHOOK_URL, data=form, headers={"X-Twilio-Signature": sign(WEBHOOK_URL, form)})

    assert response.status_code == 400
    assert reason in response.json["detail"]
    assert stored(harness) == []


def test_non_form_body_gets_400(harness: Harness) -> None:
    response = harness.client.post(WEBHOOK_URL, json={"MessageSid": "SM1", "From": "whatsapp:+237699000001"})

    assert response.status_code == 400
    assert "application/x-www-form-urlencoded" in response.json["detail"]
    assert stored(harness) == []


def test_location_only_and_media_only_messages_are_valid(harness: Harness) -> None:
    assert harness.whatsapp("", Latitude="4.0511", Longitude="9.7679", Address="Akwa, Douala").status_code == 200
    media = {"NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m/ME1", "MediaContentType0": "image/jpeg"}
    assert harness.whatsapp("", **media).status_code == 200

    rows = stored(harness)
    assert (rows[0]["latitude"], rows[0]["longitude"]) == (4.0511, 9.7679)
    assert json.loads(rows[1]["media"]) == [{"url": "https://api.twilio.com/m/ME1", "content_type": "image/jpeg"}]


def test_duplicate_delivery_is_stored_once_and_answered_once(harness: Harness) -> None:
    sid = "SM" + "f" * 32
    first = harness.whatsapp("Bonjour, j'ai une fuite d'eau", sid=sid)
    second = harness.whatsapp("Bonjour, j'ai une fuite d'eau", sid=sid)  # Twilio retried
    harness.drain()
    third = harness.whatsapp("Bonjour, j'ai une fuite d'eau", sid=sid)  # and again, after the answer
    harness.drain()

    assert first.status_code == second.status_code == third.status_code == 200
    assert len(stored(harness)) == 1
    assert len(harness.sent()) == 1
    assert harness.inbound_statuses() == ["done"]


def test_status_callback_is_signed_and_recorded(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()
    [row] = list(harness.runtime.store.db.query("select * from outbound_messages"))
    url = "http://localhost/webhook/twilio/status"
    form = {"MessageSid": row["twilio_sid"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}

    forged = harness.client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form, "wrong")})
    recorded = harness.client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)})
    late = {**form, "MessageStatus": "sent"}  # callbacks can arrive out of order
    harness.client.post(url, data=late, headers={"X-Twilio-Signature": sign(url, late)})

    assert forged.status_code == 403
    assert recorded.status_code == 204
    status = harness.runtime.store.db.execute("select status from outbound_messages").fetchone()[0]
    assert status == "delivered"
    events = [r[0] for r in harness.runtime.store.db.execute("select status from message_status_events order by id")]
    assert events == ["delivered", "sent"]


def test_status_callback_without_sid_gets_400(harness: Harness) -> None:
    url = "http://localhost/webhook/twilio/status"
    form = {"MessageStatus": "delivered"}

    response = harness.client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)})

    assert response.status_code == 400 and "MessageSid" in response.json["detail"]


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"MessageSid": "SM" + "0" * 32 + "MessageStatusdelivered"}, "MessageSid must be SM or MM"),
        ({"MessageSid": "SM" + "0" * 32, "SmsSid": "SM" + "1" * 32}, "SmsSid 'SM111"),
    ],
    ids=["malformed", "alias-differs"],
)
def test_status_callback_with_a_bad_sid_is_a_400_never_a_500(harness: Harness, form: dict, reason: str) -> None:
    url = "http://localhost/webhook/twilio/status"
    form = {**form, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}

    response = harness.client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)})

    assert response.status_code == 400 and reason in response.json["detail"]
    assert harness.runtime.store.db.execute("select count(*) from message_status_events").fetchone()[0] == 0


def test_auth_token_never_appears_in_responses_or_database(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.client.post(WEBHOOK_URL, data={"MessageSid": "SM1"}, headers={"X-Twilio-Signature": "x"})
    harness.drain()

    dump = "\n".join(harness.runtime.store.db.conn.iterdump())
    assert AUTH_TOKEN not in dump


def test_invalid_utf8_in_a_form_field_is_stored_as_sent_never_500(harness: Harness) -> None:
    # %ED%A0%80 would decode to a lone surrogate, which SQLite cannot store; the form keeps the escape as text.
    raw = f"MessageSid=SM{'b' * 32}&From=whatsapp%3A%2B237699000001&Body=fuite%ED%A0%80&ProfileName=%ED%A0%80"
    decoded = {"MessageSid": "SM" + "b" * 32, "From": f"whatsapp:{CUSTOMER}", "Body": "fuite%ED%A0%80",
               "ProfileName": "%ED%A0%80"}  # fmt: skip
    response = harness.client.post(
        WEBHOOK_URL,
        data=raw,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(WEBHOOK_URL, decoded)},
    )

    assert response.status_code == 200
    [row] = stored(harness)
    assert (row["body"], row["profile_name"]) == ("fuite%ED%A0%80", "%ED%A0%80")


def test_status_callback_with_numbers_sqlite_cannot_hold_is_not_a_500(harness: Harness) -> None:
    huge = "9" * 30  # past SQLite's 64-bit integers: an OverflowError, not an sqlite3.Error
    url = f"http://localhost/webhook/twilio/status?outbound={huge}"
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    with_code = {**form, "ErrorCode": huge}

    ignored_id = harness.client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)})
    bad_code = harness.client.post(url, data=with_code, headers={"X-Twilio-Signature": sign(url, with_code)})

    assert ignored_id.status_code == 204  # an unknown message: logged, nothing to update
    assert bad_code.status_code == 400 and "ErrorCode" in bad_code.json["detail"]
