"""Photos and voice notes through the whole path: a Twilio-signed webhook carrying ``MediaUrl0`` (an emulated Twilio
media URL), the worker, the engine fetching the media, the providers (LiteLLM's real clients to the emulator, whose
scripted model sees the photo and hears the voice note from the test fixtures), the reply accepted by Twilio."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bot.conversation.fixed_replies import type_it_reply
from bot.sandbox.media import fixture, transcript
from tests.support import Harness


def send_media(harness: Harness, name: str, body: str = "", fault: str | None = None, **overrides: str) -> str:
    data, content_type = fixture(name)
    url = harness.emulator.twilio.add_media(data, content_type, fault=fault)
    form = {"NumMedia": "1", "MediaUrl0": url, "MediaContentType0": content_type, **overrides}
    assert harness.whatsapp(body, **form).status_code == 200
    harness.drain()
    return url


def media_rows(harness: Harness) -> list[dict]:
    return list(harness.runtime.store.db.query("select * from inbound_media order by inbound_id, position"))


def calls(harness: Harness) -> list[tuple[str, str, str]]:
    return [
        (r["purpose"], r["provider"], r["outcome"])
        for r in harness.runtime.store.db.query("select * from llm_calls order by started_at, rowid")
    ]


def request_of(harness: Harness) -> dict:
    [request] = harness.runtime.history.requests("+237699000001")
    return request


def test_a_pidgin_voice_note_becomes_a_stored_request(harness: Harness) -> None:
    send_media(harness, "pidgin_voice_note")

    [reply] = harness.sent()
    assert reply.startswith(
        ("Thank you, we don receive your voice note.", "Merci, nous avons bien reçu votre message vocal.")
    )
    request = request_of(harness)
    assert (request["service_type"], request["location"]) == ("plomberie", "Bonamoussadi")
    assert "pipe" in request["description"]
    # Gemini heard the audio itself: the only provider of the three that takes audio.
    assert calls(harness) == [("chat", "gemini", "success")]
    [part] = harness.emulator.calls("gemini")[0].request.media
    assert (part.kind, part.mime_type) == ("audio", "audio/ogg")
    [row] = media_rows(harness)
    assert (row["status"], row["content_type"]) == ("fetched", "audio/ogg")
    # Its tokens and cost are the attempt's, like any call.
    [cost] = [r for r in harness.runtime.store.db.query("select input_tokens, cost_usd from llm_calls")]
    assert cost["input_tokens"] > 100 and cost["cost_usd"] > 0


def test_a_photo_and_e_don_spoil_become_an_appliance_request(harness: Harness) -> None:
    send_media(harness, "fridge_photo", body="E don spoil")

    [reply] = harness.sent()
    assert "photo" in reply or "picture" in reply
    request = request_of(harness)
    assert request["service_type"] == "electromenager"
    assert "fridge control board" in request["description"]
    assert calls(harness) == [("chat", "claude", "success")]
    [part] = harness.emulator.calls("claude")[0].request.media
    assert (part.kind, part.mime_type, part.width, part.height) == ("image", "image/png", 96, 64)


def test_gemini_benched_the_voice_note_is_transcribed_by_openai(harness: Harness) -> None:
    harness.emulator.set_fault("gemini", "credit_exhausted")

    send_media(harness, "pidgin_voice_note")

    assert calls(harness) == [
        ("chat", "gemini", "failure"),  # it was asked the audio, and benched by its answer
        ("transcription", "whisper", "success"),
        ("chat", "claude", "success"),
    ]
    [row] = media_rows(harness)
    assert (row["transcript"], row["transcribed_by"]) == (transcript("pidgin_voice_note"), "whisper")
    # Claude got the words, never the audio.
    assert harness.emulator.calls("claude")[0].request.media == ()
    assert transcript("pidgin_voice_note") in harness.emulator.calls("claude")[0].request.last_user_text
    request = request_of(harness)
    assert (request["service_type"], request["language"]) == ("plomberie", "pcm")  # the transcript tells Pidgin
    assert harness.sent()[0].startswith("Thank you, we don receive your voice note.")

    # The transcript stays with the message: the next turn's history carries it, nothing is transcribed again.
    harness.whatsapp("Na today today")
    harness.drain()
    assert [c for c in calls(harness) if c[0] == "transcription"] == [("transcription", "whisper", "success")]
    history = harness.emulator.calls("claude")[-1].request.messages
    assert any(transcript("pidgin_voice_note") in m["content"] for m in history if m["role"] == "user")


def test_nobody_can_hear_it_the_customer_is_asked_to_type_then_answered(harness: Harness) -> None:
    harness.whatsapp("Abeg I get wahala for my house")
    harness.drain()
    harness.emulator.set_fault("gemini", "credit_exhausted")
    harness.emulator.set_fault("openai", "credit_exhausted")  # whisper is OpenAI's

    send_media(harness, "pidgin_voice_note")

    assert harness.sent()[-1] == type_it_reply("pcm")
    assert calls(harness)[1:] == [("chat", "gemini", "failure"), ("transcription", "whisper", "failure")]
    [row] = media_rows(harness)
    assert row["status"] == "fetched" and row["transcript"] is None  # the audio is kept
    data, _ = fixture("pidgin_voice_note")
    assert harness.runtime.engine.media.library.read(row["sha256"]) == data
    assert harness.inbound_statuses() == ["done", "done"]

    harness.whatsapp("My kitchen pipe don burst for Bonamoussadi")
    harness.drain()
    assert len(harness.sent()) == 3 and harness.sent()[-1] != type_it_reply("pcm")
    assert calls(harness)[-1] == ("chat", "claude", "success")
    assert request_of(harness)["service_type"] == "plomberie"


@pytest.mark.parametrize(
    ("case", "env", "fault", "status", "note"),
    [
        ("oversized", {"MEDIA_MAX_BYTES": "1000"}, None, "too_large", "[a voice note could not be fetched: too large]"),
        (
            "wrong_type",
            {},
            "wrong_type",
            "refused_type",
            "[a voice note could not be fetched: a file type we do not take]",
        ),
        ("404", {}, "404", "unreachable", "[a voice note could not be fetched]"),
        ("hang", {"MEDIA_FETCH_TIMEOUT_S": "0.5"}, "hang", "timeout", "[a voice note could not be fetched]"),
    ],
)
def test_media_that_cannot_be_fetched_leaves_the_conversation_going(
    make_harness: Callable[..., Harness], case: str, env: dict, fault: str | None, status: str, note: str
) -> None:
    harness = make_harness(**env)
    started = time.monotonic()

    send_media(harness, "pidgin_voice_note", body="Bonjour, j'ai une fuite d'eau", fault=fault)

    assert time.monotonic() - started < 10
    [reply] = harness.sent()
    assert "quartier" in reply  # the words were understood: the next question is asked
    [row] = media_rows(harness)
    assert row["status"] == status
    assert note in harness.emulator.calls("claude")[0].request.last_user_text
    assert request_of(harness)["service_type"] == "plomberie"
    assert harness.inbound_statuses() == ["done"]


def test_a_url_off_twilios_origin_is_never_requested(harness: Harness) -> None:
    """A URL off Twilio's origin (here a made-up one) is never requested, and the turn goes on."""
    harness.whatsapp(
        "Bonjour, mon robinet fuit",
        NumMedia="1",
        MediaUrl0="https://media.example.com/x.jpg",
        MediaContentType0="image/jpeg",
    )
    harness.drain()
    assert harness.sent()[0].startswith("Merci, nous avons bien reçu votre photo.")
    [row] = media_rows(harness)
    assert row["status"] == "refused_host"
    assert json.loads(request_of(harness)["media"])[0]["url"] == "https://media.example.com/x.jpg"


ADMIN_TOKEN = "media-e2e-admin-token-0123456789"


def test_staff_see_the_transcript_in_the_requests_conversation(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(ADMIN_API_TOKEN=ADMIN_TOKEN)
    harness.emulator.set_fault("gemini", "credit_exhausted")
    send_media(harness, "pidgin_voice_note")

    detail = harness.client.get(
        f"/api/requests/{request_of(harness)['id']}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )

    assert detail.status_code == 200
    [said] = [m["content"] for m in detail.json["conversation"] if m["role"] == "user"]
    assert said == f'[voice note, transcribed: "{transcript("pidgin_voice_note")}"]'


def test_what_a_model_that_hears_says_it_heard_is_kept_as_the_transcript(harness: Harness) -> None:
    from bot.sandbox.scripted_model import djobea_model_reply

    def hearing_model(request) -> str:  # a model that fills the optional "heard" field, as a real one may
        answer = json.loads(djobea_model_reply(request))
        return json.dumps({**answer, "heard": transcript("pidgin_voice_note")} if request.media else answer)

    harness.emulator.set_responder(None, hearing_model)
    send_media(harness, "pidgin_voice_note")

    [row] = media_rows(harness)
    assert (row["transcript"], row["transcribed_by"]) == (transcript("pidgin_voice_note"), "gemini")
    conversation = harness.runtime.history.find("+237699000001")
    [said, _] = harness.runtime.history.recent(conversation.id)
    assert said.content == f'[voice note: "{transcript("pidgin_voice_note")}"]'


def test_a_voice_note_nobody_hears_beside_typed_words_lets_the_words_be_answered(harness: Harness) -> None:
    harness.emulator.set_fault("gemini", "credit_exhausted")
    harness.emulator.set_fault("openai", "credit_exhausted")

    send_media(harness, "pidgin_voice_note", body="Bonjour, j'ai une fuite d'eau")

    [reply] = harness.sent()
    assert reply != type_it_reply("fr") and "quartier" in reply
    said = harness.emulator.calls("claude")[-1].request.last_user_text
    assert "[a voice note nobody could listen to: ask the customer to type what it says]" in said


def test_with_no_model_that_sees_images_the_words_are_answered(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    config_path = tmp_path / "providers.yaml"  # the fixture's config, read when the app first calls a model
    config = yaml.safe_load(config_path.read_text())
    for entry in config["model_list"]:
        entry["model_info"]["supports_vision"] = False
    config_path.write_text(yaml.safe_dump(config))
    harness = make_harness()

    send_media(harness, "fridge_photo", body="Bonjour, mon frigo ne marche plus")

    assert "quartier" in harness.sent()[0]
    [call] = harness.emulator.calls()
    assert call.request.media == ()
    assert "[a photo the assistant could not look at]" in call.request.last_user_text
    assert request_of(harness)["service_type"] == "electromenager"
