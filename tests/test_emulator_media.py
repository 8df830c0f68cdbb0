"""The emulator's media path with no keys: Twilio media URLs (Basic auth, redirect to a CDN, faults), images and
audio in each provider's real wire format as LiteLLM 1.110.2 sends them, Whisper transcription, and the scripted
model answering from the test fixtures.

The MEDIA_WIRE table pins what LiteLLM sends for OpenAI-style content parts; the LLM layer routes media on it, so
a LiteLLM upgrade that changes it must fail here first.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import struct
import threading
import time

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before importing litellm: no network fetch

import httpx
import litellm
import openai
import pytest
import requests

from bot.sandbox import ProviderEmulator
from bot.sandbox.media import GENERIC_TRANSCRIPT, description, fixture, fixtures, transcript
from bot.sandbox.scripted_model import djobea_model_reply
from tests.support import ACCOUNT_SID, AUTH_TOKEN, media_fields

litellm.suppress_debug_info = True

MODELS = {"claude": "anthropic/claude-haiku-4-5", "gemini": "gemini/gemini-2.5-flash", "openai": "openai/gpt-4o-mini"}
NO_THINKING = {"gemini": {"reasoning_effort": "none"}}
MEDIA_URL = re.compile(
    r"^http://127\.0\.0\.1:\d+/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages/(MM[0-9a-f]{32})/Media/(ME[0-9a-f]{32})$"
)
# Built like the engine's prompt: the scripted model reads the language hint and what is still missing.
DJOBEA_SYSTEM = (
    "You are Djobea, the WhatsApp assistant of a home-services company in Douala, Cameroon.\n"
    "The customer seems to write in: pcm (Pidgin).\n"
    "Request so far (JSON): {}\n"
    "Still missing: service_type, location, description, urgency"
)


@pytest.fixture(scope="module")
def shared_emulator():
    with ProviderEmulator(responder=djobea_model_reply) as emulator:
        yield emulator


@pytest.fixture
def emu(shared_emulator: ProviderEmulator):
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()


@pytest.fixture
def twilio(emu: ProviderEmulator):
    emu.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    return emu.twilio


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_part(name: str = "fridge_photo") -> dict:
    data, content_type = fixture(name)
    return {"type": "image_url", "image_url": {"url": f"data:{content_type};base64,{b64(data)}"}}


def audio_part(data: bytes, audio_format: str) -> dict:
    return {"type": "input_audio", "input_audio": {"data": b64(data), "format": audio_format}}


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A silent mono 16-bit WAV."""
    samples = b"\x00\x00" * int(seconds * rate)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(samples), b"WAVE", b"fmt ", 16, 1, 1, rate,
                         rate * 2, 2, 16, b"data", len(samples))  # fmt: skip
    return header + samples


def complete(emu: ProviderEmulator, provider: str, content: list | str, system: str = "be brief", **kwargs):
    return litellm.completion(
        model=MODELS[provider],
        api_base=emu.api_base(provider),
        api_key="test-key",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": content}],
        max_tokens=200,
        num_retries=0,
        **{**NO_THINKING.get(provider, {}), **kwargs},
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- fixtures ---------------------------------------------------------------------------------------------


def test_fixtures_match_their_manifest_and_are_small_valid_files() -> None:
    photo, photo_type = fixture("fridge_photo")
    voice, voice_type = fixture("pidgin_voice_note")

    assert (photo_type, voice_type) == ("image/png", "audio/ogg")
    assert photo.startswith(b"\x89PNG\r\n\x1a\n") and struct.unpack(">II", photo[16:24]) == (96, 64)
    assert voice.startswith(b"OggS") and b"OpusHead" in voice[:64] and len(voice) < 30_000
    for entry in fixtures().values():
        assert sha256(entry.read()) == entry.sha256
    assert "fridge" in description("fridge_photo")
    assert transcript("pidgin_voice_note").startswith("My kitchen pipe don burst")
    with pytest.raises(KeyError, match="fridge_photo"):
        fixture("nothing")


# --- Twilio media URLs ------------------------------------------------------------------------------------


def test_media_url_has_twilios_shape_and_needs_basic_auth(twilio) -> None:
    data, content_type = fixture("fridge_photo")
    url = twilio.add_media(data, content_type)

    match = MEDIA_URL.match(url)
    assert match and match[1] == ACCOUNT_SID
    anonymous = requests.get(url, timeout=5)
    wrong = requests.get(url, auth=(ACCOUNT_SID, "not-the-token"), timeout=5)

    assert anonymous.status_code == 401 and anonymous.json()["code"] == 20003
    assert wrong.status_code == 401
    assert [(f["step"], f["auth_user"], f["authorized"], f["status"]) for f in twilio.media_fetches()] == [
        ("twilio", None, False, 401),
        ("twilio", ACCOUNT_SID, False, 401),
    ]


def test_media_fetch_with_auth_follows_a_redirect_to_the_bytes(twilio) -> None:
    data, content_type = fixture("pidgin_voice_note")
    url = twilio.add_media(data, content_type)

    response = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)

    assert response.status_code == 200 and response.content == data
    assert response.headers["Content-Type"] == "audio/ogg"
    assert response.headers["Content-Length"] == str(len(data))
    [redirect] = response.history
    assert redirect.status_code == 307 and "/_cdn/media/" in redirect.headers["Location"]
    fetches = twilio.media_fetches()
    assert [(f["step"], f["status"]) for f in fetches] == [("twilio", 307), ("cdn", 200)]
    assert fetches[0]["auth_user"] == ACCOUNT_SID and fetches[0]["authorized"] is True
    assert "token" not in json.dumps(fetches)  # the password is never recorded


def test_cdn_url_needs_no_auth(twilio) -> None:
    url = twilio.add_media(b"\xff\xd8\xff\xe0 jpeg", "image/jpeg")

    redirect = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), allow_redirects=False, timeout=5)
    cdn = httpx.get(redirect.headers["Location"], timeout=5)

    assert redirect.status_code == 307
    assert cdn.status_code == 200 and cdn.content == b"\xff\xd8\xff\xe0 jpeg"
    assert httpx.get(redirect.headers["Location"] + "x", timeout=5).status_code == 404


def test_media_404_fault_answers_404_after_auth(twilio) -> None:
    url = twilio.add_media(b"gone", "image/jpeg", fault="404")

    assert requests.get(url, timeout=5).status_code == 401
    response = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)

    assert response.status_code == 404 and response.json()["code"] == 20404
    assert [f["step"] for f in twilio.media_fetches()] == ["twilio", "twilio"]


def test_media_wrong_type_fault_declares_another_type(twilio) -> None:
    data, _ = fixture("pidgin_voice_note")
    html = twilio.add_media(data, "audio/ogg", fault="wrong_type")
    pdf = twilio.add_media(data, "audio/ogg", fault="wrong_type", served_type="application/pdf")

    first = requests.get(html, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    second = requests.get(pdf, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)

    assert first.headers["Content-Type"] == "text/html; charset=utf-8" and first.content == data
    assert second.headers["Content-Type"] == "application/pdf"


def test_large_media_is_served_whole(twilio) -> None:
    data = bytes(range(256)) * (17 * 1024 * 4)  # 17 MB, over WhatsApp's 16 MB
    url = twilio.add_media(data, "video/mp4")

    response = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=30)

    assert response.headers["Content-Length"] == str(17 * 1024 * 1024) and response.content == data


def test_media_hang_fault_sends_headers_then_no_body_and_blocks_no_one(twilio) -> None:
    hanging = twilio.add_media(b"never", "audio/ogg", fault="hang")
    fine = twilio.add_media(b"fine", "audio/ogg")

    started = time.monotonic()
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        requests.get(hanging, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=(5, 0.3))
    assert time.monotonic() - started < 5
    streamed = requests.get(hanging, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=(5, 0.3), stream=True)
    assert streamed.status_code == 200 and streamed.headers["Content-Length"] == "5"
    with pytest.raises(requests.exceptions.ConnectionError):
        streamed.content  # noqa: B018 - reading the body is what times out

    assert requests.get(fine, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).content == b"fine"


def test_stop_frees_a_hanging_media_body_promptly() -> None:
    emulator = ProviderEmulator().start()
    url = emulator.twilio.add_media(b"never", "audio/ogg", fault="hang")
    outcome: dict = {}

    def fetch() -> None:
        try:
            outcome["response"] = httpx.get(url, auth=(ACCOUNT_SID, "any"), follow_redirects=True, timeout=60)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    assert emulator.twilio.wait_for_media_fetches(2)  # the Twilio URL, then the CDN that holds the body back

    started = time.monotonic()
    emulator.stop()
    thread.join(10)

    assert not thread.is_alive() and time.monotonic() - started < 10
    assert isinstance(outcome.get("error"), httpx.HTTPError)


def test_media_control_api_and_reset(emu: ProviderEmulator, twilio) -> None:
    data, content_type = fixture("fridge_photo")
    http = httpx.Client(base_url=emu.base_url, timeout=5)

    reply = http.post("/_emulator/twilio/media", json={"content": b64(data), "content_type": content_type})
    url = reply.json()["url"]
    refused = http.post("/_emulator/twilio/media", json={"content": b64(data), "content_type": "x", "fault": "boom"})
    assert requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).content == data
    fetches = http.get("/_emulator/twilio/media/fetches").json()["fetches"]

    assert reply.status_code == 200 and MEDIA_URL.match(url)
    assert refused.status_code == 400 and "unknown media fault" in refused.json()["error"]
    assert [f["step"] for f in fetches] == ["twilio", "cdn"]
    emu.reset()
    twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    assert requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 404


def test_media_of_one_message_share_its_sid_and_fill_the_webhook_form(twilio) -> None:
    message_sid = "MM" + "ab" * 16
    urls = [twilio.add_media(b"a", "image/jpeg", message_sid=message_sid),
            twilio.add_media(b"b", "audio/ogg", message_sid=message_sid)]  # fmt: skip

    assert {MEDIA_URL.match(url)[2] for url in urls} == {message_sid}
    assert media_fields([(urls[0], "image/jpeg"), (urls[1], "audio/ogg")]) == {
        "NumMedia": "2",
        "MediaUrl0": urls[0],
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": urls[1],
        "MediaContentType1": "audio/ogg",
    }


# --- provider wire formats through LiteLLM ----------------------------------------------------------------

# provider -> what LiteLLM 1.110.2 puts on the wire for an OpenAI-style image_url part (data URL).
IMAGE_WIRE = {
    "claude": lambda data: {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
    "gemini": lambda data: {"inline_data": {"data": data, "mime_type": "image/png"}},
    "openai": lambda data: {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
}


def user_parts(provider: str, body: dict) -> list:
    if provider == "gemini":
        return body["contents"][-1]["parts"]
    return body["messages"][-1]["content"]


@pytest.mark.parametrize("provider", list(MODELS))
def test_image_reaches_each_provider_in_its_wire_format(emu: ProviderEmulator, provider: str) -> None:
    data, _ = fixture("fridge_photo")
    text_only = complete(emu, provider, [{"type": "text", "text": "e don spoil"}])

    response = complete(emu, provider, [{"type": "text", "text": "e don spoil"}, image_part()])

    assert response.choices[0].message.content == text_only.choices[0].message.content
    _, call = emu.calls(provider)
    assert IMAGE_WIRE[provider](b64(data)) in user_parts(provider, call.request.body)
    [media] = call.to_json()["media"]
    assert (media["kind"], media["mime_type"], media["sha256"]) == ("image", "image/png", sha256(data))
    assert (media["width"], media["height"]) == (96, 64) and media["tokens"] > 0
    assert response.usage.prompt_tokens == text_only.usage.prompt_tokens + media["tokens"]
    assert response._hidden_params["response_cost"] > text_only._hidden_params["response_cost"]


def test_gemini_hears_audio_as_inline_data_and_bills_audio_tokens(emu: ProviderEmulator) -> None:
    data, _ = fixture("pidgin_voice_note")

    response = complete(emu, "gemini", [audio_part(data, "ogg")])

    [call] = emu.calls("gemini")
    assert {"inline_data": {"data": b64(data), "mime_type": "audio/ogg"}} in user_parts("gemini", call.request.body)
    [media] = call.request.media
    assert (media.kind, media.mime_type, media.sha256, media.duration_s) == ("audio", "audio/ogg", sha256(data), 5.85)
    assert media.tokens == 188  # 32 a second
    assert response.usage.prompt_tokens_details.audio_tokens == 188
    assert response._hidden_params["response_cost"] > 0


def test_gemini_takes_camel_case_inline_data_and_refuses_other_mime_types(emu: ProviderEmulator) -> None:
    data, _ = fixture("fridge_photo")
    path = "/v1beta/models/gemini-2.5-flash:generateContent"

    def post(mime: str) -> httpx.Response:
        parts = [{"text": "look"}, {"inlineData": {"mimeType": mime, "data": b64(data)}}]
        return httpx.post(emu.base_url + path, json={"contents": [{"role": "user", "parts": parts}]}, timeout=5)

    accepted = post("image/png")
    refused = post("application/octet-stream")

    assert accepted.status_code == 200 and emu.calls("gemini")[0].request.media[0].sha256 == sha256(data)
    assert refused.status_code == 400 and refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "Unsupported MIME type: application/octet-stream" in refused.text


def test_openai_takes_input_audio_in_wav_or_mp3_only(emu: ProviderEmulator) -> None:
    voice, _ = fixture("pidgin_voice_note")

    complete(emu, "openai", [{"type": "text", "text": "listen"}, audio_part(wav(2.0), "wav")])
    with pytest.raises(litellm.BadRequestError, match="Supported values are: 'wav' and 'mp3'"):
        complete(emu, "openai", [audio_part(voice, "ogg")])

    accepted, refused = emu.calls("openai")
    assert {"type": "input_audio", "input_audio": {"data": b64(wav(2.0)), "format": "wav"}} in user_parts(
        "openai", accepted.request.body
    )
    [media] = accepted.request.media
    assert (media.kind, media.mime_type, media.duration_s, media.tokens) == ("audio", "audio/wav", 2.0, 20)
    assert json.loads(httpx.get(emu.base_url + "/_emulator/calls").text)["calls"][0]["media"][0]["kind"] == "audio"
    assert refused.status == 400 and refused.request.media == ()


def test_claude_is_never_sent_input_audio_by_litellm(emu: ProviderEmulator) -> None:
    """LiteLLM drops input_audio parts for Anthropic without a word: with text beside it Claude answers the text
    alone; alone, the request has no message left and Claude refuses it (400, BadRequestError)."""
    data, _ = fixture("pidgin_voice_note")

    complete(emu, "claude", [{"type": "text", "text": "listen"}, audio_part(data, "ogg")])
    with pytest.raises(litellm.BadRequestError, match="at least one message is required") as raised:
        complete(emu, "claude", [audio_part(data, "ogg")])

    with_text, alone = emu.calls("claude")
    assert with_text.status == 200 and with_text.request.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "listen"}]}
    ]
    assert (alone.status, alone.request.body["messages"], raised.value.status_code) == (400, [], 400)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ({"type": "file", "file": {"file_data": "data:audio/ogg;base64,{data}"}},
         "document.source.base64.media_type: Input should be 'application/pdf'"),
        ({"type": "image_url", "image_url": {"url": "data:audio/ogg;base64,{data}"}},
         "image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"),
    ],
)  # fmt: skip
def test_claude_refuses_audio_sent_as_a_file_or_an_image(emu: ProviderEmulator, part: dict, message: str) -> None:
    data, _ = fixture("pidgin_voice_note")
    part = json.loads(json.dumps(part).replace("{data}", b64(data)))

    with pytest.raises(litellm.BadRequestError, match=re.escape(message)):
        complete(emu, "claude", [{"type": "text", "text": "listen"}, part])

    [call] = emu.calls("claude")
    assert call.status == 400


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "ogg"}},
         "messages.0.content.1: Input tag 'input_audio' found using 'type' does not match any of the expected tags"),
        ({"type": "audio", "source": {"type": "base64", "media_type": "audio/ogg", "data": "AAAA"}},
         "messages.0.content.1: Input tag 'audio' found"),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "{png}"}},
         "messages.0.content.1.image.source.base64.data: Image does not match the provided media type image/jpeg"),
    ],
)  # fmt: skip
def test_claude_refuses_raw_audio_blocks_and_mislabelled_images(
    emu: ProviderEmulator, block: dict, message: str
) -> None:
    data, _ = fixture("fridge_photo")
    block = json.loads(json.dumps(block).replace("{png}", b64(data)))
    emu.set_fault("claude", "server_error", times=1)
    body = {"model": "claude-haiku-4-5", "max_tokens": 20,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, block]}]}  # fmt: skip

    refused = httpx.post(emu.base_url + "/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=5)

    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert message in refused.json()["error"]["message"]
    assert [(c.fault, c.status) for c in emu.calls("claude")] == [(None, 400)]  # a refusal spends no fault


def test_openai_refuses_an_image_that_is_not_one(emu: ProviderEmulator) -> None:
    html = {"type": "image_url", "image_url": {"url": "data:text/html;base64," + b64(b"<html></html>")}}

    with pytest.raises(litellm.BadRequestError, match="unsupported image"):
        complete(emu, "openai", [{"type": "text", "text": "look"}, html])


# --- transcription ----------------------------------------------------------------------------------------


def test_litellm_transcription_gets_the_fixture_transcript_and_a_cost(emu: ProviderEmulator) -> None:
    data, content_type = fixture("pidgin_voice_note")

    response = litellm.transcription(
        model="openai/whisper-1", api_base=emu.api_base("openai"), api_key="k", file=("voice.ogg", data, content_type)
    )

    assert response.text == transcript("pidgin_voice_note")
    assert response._hidden_params["response_cost"] == pytest.approx(5.85 * 0.0001)
    [call] = emu.calls("openai")
    assert (call.path, call.status, call.model) == ("/v1/audio/transcriptions", 200, "whisper-1")
    assert call.request.body["response_format"] == "verbose_json"  # LiteLLM asks for it, to price the duration
    assert [(m["kind"], m["mime_type"], m["sha256"]) for m in call.to_json()["media"]] == [
        ("audio", "audio/ogg", sha256(data))
    ]


def test_transcription_of_unknown_audio_is_generic(emu: ProviderEmulator) -> None:
    audio = io.BytesIO(wav(1.0))
    audio.name = "note.wav"

    response = litellm.transcription(model="openai/whisper-1", api_base=emu.api_base("openai"), api_key="k", file=audio)

    assert response.text == GENERIC_TRANSCRIPT


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [("json", {"text"}), ("text", None), ("srt", None), ("vtt", None)],
)
def test_transcription_answers_in_the_format_asked(emu: ProviderEmulator, response_format: str, expected) -> None:
    data, content_type = fixture("pidgin_voice_note")

    response = httpx.post(
        emu.base_url + "/v1/audio/transcriptions",
        data={"model": "whisper-1", "response_format": response_format},
        files={"file": ("voice.ogg", data, content_type)},
        timeout=5,
    )

    assert response.status_code == 200 and transcript("pidgin_voice_note") in response.text
    if expected:
        assert expected <= set(response.json())


def test_transcription_refuses_formats_whisper_does_not_take(emu: ProviderEmulator) -> None:
    response = httpx.post(
        emu.base_url + "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("voice.amr", b"#!AMR\n", "audio/amr")},
        timeout=5,
    )

    assert response.status_code == 400 and "Invalid file format" in response.json()["error"]["message"]


def test_transcription_takes_the_openai_faults_and_latency(emu: ProviderEmulator) -> None:
    """litellm.transcription maps no error: the OpenAI SDK's own exceptions come out (openai.RateLimitError, not
    litellm's), and only max_retries=0 stops the SDK's two silent retries (num_retries does not)."""
    data, content_type = fixture("pidgin_voice_note")
    emu.set_fault("openai", "rate_limited", times=1)

    def transcribe(**kwargs):
        return litellm.transcription(
            model="openai/whisper-1", api_base=emu.api_base("openai"), api_key="k",
            file=("voice.ogg", data, content_type), max_retries=0, **kwargs,
        )  # fmt: skip

    with pytest.raises(openai.RateLimitError) as limited:
        transcribe()
    emu.set_fault("openai", "hang", times=1)
    with pytest.raises(openai.APITimeoutError) as timed_out:
        transcribe(timeout=0.5)
    emu.set_latency("openai", 0.3)
    started = time.monotonic()
    assert transcribe().text == transcript("pidgin_voice_note")

    assert time.monotonic() - started >= 0.3
    assert [(c.fault, c.status) for c in emu.calls("openai")] == [("rate_limited", 429), ("hang", None), (None, 200)]
    assert (type(limited.value).__module__, limited.value.status_code) == ("openai", 429)
    assert not isinstance(limited.value, litellm.RateLimitError) and type(timed_out.value).__module__ == "openai"


# --- the scripted model answers from the fixtures ---------------------------------------------------------


def turn(emu: ProviderEmulator, provider: str, content: list) -> dict:
    return json.loads(complete(emu, provider, content, system=DJOBEA_SYSTEM).choices[0].message.content)


@pytest.mark.parametrize("provider", list(MODELS))
def test_a_photo_and_e_don_spoil_become_an_appliance_repair(emu: ProviderEmulator, provider: str) -> None:
    reply = turn(emu, provider, [{"type": "text", "text": "e don spoil"}, image_part()])

    assert reply["service_type"] == "electromenager"
    assert reply["description"] == f"e don spoil; {description('fridge_photo')}"
    assert reply["location"] is None and reply["language"] == "pcm"
    assert turn(emu, provider, [{"type": "text", "text": "e don spoil"}, image_part()]) == reply  # deterministic


def test_a_pidgin_voice_note_becomes_a_plumbing_request_with_a_quartier(emu: ProviderEmulator) -> None:
    data, _ = fixture("pidgin_voice_note")

    reply = turn(emu, "gemini", [audio_part(data, "ogg")])

    assert reply["service_type"] == "plomberie"
    assert reply["location"] == "Bonamoussadi"
    assert reply["description"] == transcript("pidgin_voice_note")


def test_unknown_media_classify_nothing(emu: ProviderEmulator) -> None:
    other_png = fixture("fridge_photo")[0] + b"\x00"  # other bytes, still a PNG
    photo = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(other_png)}}

    seen = turn(emu, "gemini", [photo])
    heard = turn(emu, "gemini", [audio_part(wav(1.0), "wav")])

    assert seen["service_type"] is None and seen["description"].startswith("a photo that shows nothing")
    assert heard["service_type"] is None and heard["description"] is None
