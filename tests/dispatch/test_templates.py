"""Offers outside the artisan's 24-hour window go as the approved template (Twilio ContentSid +
ContentVariables), inside it as free text with the same words; without a template such an artisan is skipped.
Twilio's REST calls are intercepted with ``responses`` to read exactly what was posted."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs

import pytest
import requests
import responses

from bot.dispatch import DispatchSettings
from bot.dispatch.settings import DispatchSettingsError
from bot.dispatch.texts import OFFER_TEMPLATE, render_template
from bot.messaging.twilio_gateway import TwilioGateway
from bot.sandbox.twilio_payloads import message_page, message_resource
from tests.dispatch.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, GRACE_S, OFFER_SID, World

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
ALAIN, BRUNO = "+237690000001", "+237690000002"


def real_twilio() -> TwilioGateway:
    return TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, timeout_s=5)


def form_of(call) -> dict[str, str]:
    body = call.request.body
    body = body.decode() if isinstance(body, bytes) else body
    return {name: values[-1] for name, values in parse_qs(body).items()}


def twilio_accepts(request) -> tuple[int, dict, str]:
    form = form_of(type("Call", (), {"request": request}))
    sid = "SM" + uuid.uuid4().hex
    return 201, {}, json.dumps({"sid": sid, "status": "queued", "to": form["To"], "account_sid": ACCOUNT_SID})


@responses.activate
def test_outside_the_window_the_offer_is_the_template_inside_it_free_text(make_world) -> None:
    responses.add_callback(responses.POST, MESSAGES_URL, callback=twilio_accepts)
    world: World = make_world(gateway=real_twilio(), offer_content_sid=OFFER_SID)
    world.artisan("Alain", ALAIN)  # wrote now...
    world.clock.advance(24 * 3600 + 1)  # ...but that was more than 24 hours ago
    world.artisan("Bruno", BRUNO)
    request_id = world.confirmed_request(location="Total Bépanda", description="WC bouché", urgency="aujourd'hui")

    world.dispatch.start(request_id)

    forms = {form["To"]: form for form in map(form_of, responses.calls)}
    template = forms[f"whatsapp:{ALAIN}"]
    assert template["ContentSid"] == OFFER_SID and "Body" not in template
    variables = json.loads(template["ContentVariables"])
    offer_ids = [o["id"] for o in world.offers(request_id)]
    assert variables == {
        "1": str(request_id), "2": "plomberie", "3": "Bépanda", "4": "WC bouché", "5": "aujourd'hui",
        "6": str(offer_ids[0]),
    }  # fmt: skip
    free = forms[f"whatsapp:{BRUNO}"]
    assert "ContentSid" not in free and free["Body"] == render_template(OFFER_TEMPLATE, {**variables, "6": "x"})
    assert [o["template"] for o in world.offers(request_id)] == [1, 0]
    rows = list(world.store.db.query("select to_number, status, content_sid from outbound_messages order by id"))
    assert rows == [
        {"to_number": ALAIN, "status": "queued", "content_sid": OFFER_SID},
        {"to_number": BRUNO, "status": "queued", "content_sid": None},
    ]


def test_without_a_template_an_artisan_outside_the_window_is_skipped_with_the_reason(world: World) -> None:
    world.artisan("Alain", ALAIN, window=False)
    world.artisan("Bruno", BRUNO)
    request_id = world.confirmed_request()

    world.dispatch.start(request_id)

    assert world.offer_statuses(request_id) == {"Alain": "skipped", "Bruno": "offered"}
    assert world.sent(ALAIN) == [] and len(world.sent(BRUNO)) == 1
    note = world.store.db.execute("select note from dispatch_events where kind = 'offer_skipped'").fetchone()[0]
    assert "no TWILIO_OFFER_CONTENT_SID" in note


@responses.activate
@pytest.mark.parametrize("twilio_has_it", [True, False])
def test_a_template_send_whose_answer_was_lost_is_looked_up_before_any_resend(make_world, twilio_has_it) -> None:
    responses.post(MESSAGES_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    world: World = make_world(gateway=real_twilio(), offer_content_sid=OFFER_SID)
    world.artisan("Alain", ALAIN, window=False)
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    [row] = world.store.db.query("select * from outbound_messages")
    assert row["status"] == "in_flight"

    responses.reset()
    found = [
        message_resource(
            sid="SM" + "5" * 32,
            account_sid=ACCOUNT_SID,
            to=f"whatsapp:{ALAIN}",
            from_=f"whatsapp:{BOT_NUMBER}",
            body=row["body"],
            status="delivered",
            created_at=row["send_started_at"],
        )  # fmt: skip
    ]
    responses.get(MESSAGES_URL, json=message_page(ACCOUNT_SID, found if twilio_has_it else [], 50))
    responses.add_callback(responses.POST, MESSAGES_URL, callback=twilio_accepts)
    world.clock.advance(GRACE_S + 1)
    world.dispatch.tick()

    [after] = world.store.db.query("select * from outbound_messages")
    posts = [form_of(call) for call in responses.calls if call.request.method == "POST"]
    if twilio_has_it:
        assert posts == [] and after["twilio_sid"] == "SM" + "5" * 32
    else:  # Twilio never got it: sent again, as the template
        assert len(posts) == 1 and posts[0]["ContentSid"] == OFFER_SID and after["status"] == "queued"
    assert world.offer_statuses(request_id) == {"Alain": "offered"}


def test_settings_name_the_bad_variable() -> None:
    settings = DispatchSettings.from_env(
        {"DISPATCH_BATCH": "5", "DISPATCH_TIMEOUT_MIN": "2.5", "TWILIO_OFFER_CONTENT_SID": OFFER_SID}
    )
    assert (settings.batch_size, settings.timeout_s, settings.offer_content_sid) == (5, 150.0, OFFER_SID)
    assert DispatchSettings.from_env({}).batch_size == 3 and DispatchSettings.from_env({}).timeout_s == 600
    for env, name in [
        ({"DISPATCH_BATCH": "0"}, "DISPATCH_BATCH"),
        ({"DISPATCH_BATCH": "two"}, "DISPATCH_BATCH"),
        ({"DISPATCH_TIMEOUT_MIN": "nan"}, "DISPATCH_TIMEOUT_MIN"),
        ({"TWILIO_OFFER_CONTENT_SID": "SM123"}, "TWILIO_OFFER_CONTENT_SID"),
        ({"ALERT_WEBHOOK_URL": "ftp://x"}, "ALERT_WEBHOOK_URL"),
    ]:
        with pytest.raises(DispatchSettingsError, match=name):
            DispatchSettings.from_env(env)
