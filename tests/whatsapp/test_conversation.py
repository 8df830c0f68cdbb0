"""The conversation engine over WhatsApp: a French and an English conversation that end with a stored,
confirmed service request (the emulator scripted to answer as a model would), media, shared locations,
and bad output sent on to the next provider."""

from __future__ import annotations

import json

import pytest

from bot.sandbox.emulator import EmulatedRequest
from bot.sandbox.scripted_model import djobea_model_reply
from tests.support import CUSTOMER, Harness

CONVERSATIONS = {
    "fr": [
        ("Bonjour, j'ai une fuite d'eau sous l'évier", "quartier"),
        ("Je suis à Bonamoussadi, près de la pharmacie", "urgent"),
        ("C'est urgent, aujourd'hui si possible", "Confirmez-vous"),
        ("Oui", "enregistrée"),
    ],
    "en": [
        ("Hello, my fridge stopped working", "neighbourhood"),
        ("I am in Akwa near the cathedral", "urgent"),
        ("Tomorrow morning please", "Do you confirm"),
        ("Yes", "registered"),
    ],
}


def requests_of(harness: Harness, customer: str = CUSTOMER) -> list[dict]:
    return harness.runtime.history.requests(customer)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_conversation_ends_with_a_confirmed_service_request(harness: Harness, language: str) -> None:
    for step, (text, expected) in enumerate(CONVERSATIONS[language]):
        harness.whatsapp(text)
        harness.drain()
        assert expected in harness.sent()[step], (text, harness.sent()[step])

    # The confirmation starts dispatch; with no artisan in the directory, the customer is told a person will call.
    assert len(harness.sent()) == 5
    [request] = requests_of(harness)
    assert request["status"] == "confirmed" and request["language"] == language
    if language == "fr":
        assert request["service_type"] == "plomberie"
        assert request["location"] == "Bonamoussadi, près de la pharmacie"
        assert "fuite" in request["description"] and request["urgency"] == "urgent"
    else:
        assert request["service_type"] == "electromenager"
        assert request["location"].startswith("Akwa")
        assert "fridge" in request["description"] and request["urgency"] == "tomorrow morning"
    history = harness.runtime.history.recent(harness.runtime.history.find(CUSTOMER).id)
    assert [m.role for m in history] == ["user", "assistant"] * 4


def test_model_sees_the_history_and_the_request_so_far(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()
    harness.whatsapp("Je suis à Akwa")
    harness.drain()

    last = harness.emulator.calls("claude")[-1].request
    assert [m["role"] for m in last.messages] == ["system", "user", "assistant", "user"]
    assert '"service_type": "plomberie"' in last.messages[0]["content"]
    assert "Still missing: location, urgency" in last.messages[0]["content"]


def test_media_is_acknowledged_and_kept_with_the_request(harness: Harness) -> None:
    harness.whatsapp("Bonjour, mon robinet fuit, voici une photo", NumMedia="1",
                     MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                     MediaContentType0="image/jpeg")  # fmt: skip
    harness.drain()

    assert harness.sent()[0].startswith("Merci, nous avons bien reçu votre photo.")
    [request] = requests_of(harness)
    assert json.loads(request["media"]) == [
        {"url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "content_type": "image/jpeg"}
    ]


def test_shared_whatsapp_location_fills_the_location(harness: Harness) -> None:
    harness.whatsapp("Hello, my power is out since morning")
    harness.drain()
    harness.whatsapp("", Latitude="4.0483", Longitude="9.7043", Address="Rue Joss, Bonanjo")
    harness.drain()

    [request] = requests_of(harness)
    assert (request["latitude"], request["longitude"]) == (4.0483, 9.7043)
    assert request["location"] == "Rue Joss, Bonanjo"
    assert "urgent" in harness.sent()[-1]  # moved on to the next missing thing


def test_output_that_does_not_parse_goes_to_the_next_provider(harness: Harness) -> None:
    harness.emulator.set_responder("claude", lambda request: "Sure! Here is my answer: a plumber will come.")
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()

    [row] = list(harness.runtime.store.db.query("select provider, body from outbound_messages"))
    assert row["provider"] == "gemini" and "quartier" in row["body"]
    kinds = [r[0] for r in harness.runtime.store.db.execute("select error_kind from llm_calls order by started_at")]
    assert kinds[0] == "bad_output"


def test_invalid_service_type_counts_as_bad_output(harness: Harness) -> None:
    def carpentry(request: EmulatedRequest) -> str:
        return json.dumps({"language": "fr", "reply": "Un menuisier arrive.", "service_type": "menuiserie"})

    harness.emulator.set_responder("claude", carpentry)
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()

    assert list(harness.runtime.store.db.query("select provider from outbound_messages"))[0]["provider"] == "gemini"


def test_output_with_a_lone_surrogate_counts_as_bad_output(harness: Harness) -> None:
    # A model cut off in the middle of an emoji's escape pair: valid JSON, but no database can store the text.
    def cut_emoji(request: EmulatedRequest) -> str:
        return '{"language": "fr", "reply": "Dans quel quartier êtes-vous ? \\ud83d", "location": "Akwa \\ud83d"}'

    harness.emulator.set_responder("claude", cut_emoji)
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()

    [row] = list(harness.runtime.store.db.query("select provider, body from outbound_messages"))
    assert row["provider"] == "gemini" and harness.inbound_statuses() == ["done"]


def test_history_survives_a_restart(make_harness) -> None:
    first = make_harness()
    first.whatsapp("Bonjour, j'ai une fuite d'eau")
    first.drain()

    second = make_harness()  # another process on the same database
    second.whatsapp("Je suis à Deido")
    second.drain()

    assert "urgent" in second.sent()[-1]
    assert requests_of(second)[0]["location"] == "Deido"


def test_pidgin_customer_is_answered_in_pidgin(harness: Harness) -> None:
    harness.whatsapp("Abeg, light don go for my house")
    harness.drain()
    harness.whatsapp("e urgent o")  # too short to switch language
    harness.drain()

    assert "quarter" in harness.sent()[0]
    assert harness.runtime.history.find(CUSTOMER).language == "pcm"


def test_scripted_model_echoes_prompts_it_does_not_know() -> None:
    request = EmulatedRequest("claude", "m", [{"role": "user", "content": "hello there"}], None, {}, {}, 0.0)

    assert djobea_model_reply(request) == "[claude] hello there"
