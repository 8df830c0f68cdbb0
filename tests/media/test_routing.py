"""Capability-aware routing and transcription in ``LLMService``, through LiteLLM's real clients to the emulator:
a request carrying an image or audio goes only to deployments that take it (LiteLLM's model map, or a
``model_info`` override), in config order, under the same health and recording rules; malformed content parts are
refused before any call; a voice note is transcribed by the ``audio_transcription`` deployment, recorded once."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import yaml

from bot.admin.selftest import due_probes, run_scheduled_selftest
from bot.admin.settings import AdminSettings
from bot.llm import AllProvidersFailed, LLMService, load_router_config
from bot.sandbox import ProviderEmulator
from bot.sandbox.media import fixture, transcript
from bot.store import Store
from tests.support import write_router_config


def photo_message(text: str = "What is broken here?") -> list[dict]:
    data, content_type = fixture("fridge_photo")
    url = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    return [
        {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]}
    ]


def voice_message() -> list[dict]:
    data, _ = fixture("pidgin_voice_note")
    audio = {"data": base64.b64encode(data).decode(), "format": "ogg"}
    return [
        {"role": "user", "content": [{"type": "text", "text": "Listen"}, {"type": "input_audio", "input_audio": audio}]}
    ]


def rows(store: Store) -> list[dict]:
    return list(store.db.query("select * from llm_calls order by started_at, rowid"))


def test_models_config_takes_images_everywhere_and_audio_only_on_gemini(llm: LLMService) -> None:
    by_name = {d.name: d for d in llm.deployments}
    assert {name: (llm.capable(d, "vision"), llm.capable(d, "audio")) for name, d in by_name.items()} == {
        "claude": (True, False),
        "gemini": (True, True),
        "openai": (True, False),
    }
    assert [d.name for d in llm.setup.transcribers] == ["whisper"]  # never among the chat deployments


def test_a_photo_goes_to_the_first_provider_and_arrives_as_its_image_block(
    llm: LLMService, emulator: ProviderEmulator, store: Store
) -> None:
    completion = llm.complete(photo_message(), purpose="chat")

    assert completion.provider == "claude"
    [call] = emulator.calls("claude")
    [part] = call.request.media
    assert (part.kind, part.mime_type) == ("image", "image/png")
    [row] = rows(store)
    assert row["outcome"] == "success" and row["input_tokens"] > 0 and row["cost_usd"] > 0


def test_a_voice_note_skips_the_deployments_that_cannot_hear(llm: LLMService, emulator: ProviderEmulator) -> None:
    completion = llm.complete(voice_message(), purpose="chat")

    assert completion.provider == "gemini"
    assert emulator.call_count("claude") == emulator.call_count("openai") == 0
    [part] = emulator.calls("gemini")[0].request.media
    assert (part.kind, part.mime_type) == ("audio", "audio/ogg")


def test_no_capable_deployment_up_says_why_each_was_skipped(
    llm: LLMService, emulator: ProviderEmulator, store: Store
) -> None:
    emulator.set_fault("gemini", "credit_exhausted")
    with pytest.raises(AllProvidersFailed) as first:
        llm.complete(voice_message(), purpose="chat")
    assert [(a.provider, a.error_kind) for a in first.value.attempts] == [("gemini", "credit_exhausted")]
    assert first.value.skipped == {"claude": "cannot take audio", "openai": "cannot take audio"}

    with pytest.raises(AllProvidersFailed) as second:  # gemini is benched now: nothing is called
        llm.complete(voice_message(), purpose="chat")
    assert second.value.attempts == []
    assert second.value.skipped == {"claude": "cannot take audio", "gemini": "benched", "openai": "cannot take audio"}
    assert emulator.call_count() == 1 and len(rows(store)) == 1


def test_model_info_overrides_what_litellm_knows(provider_env: dict, store: Store, tmp_path: Path) -> None:
    config = yaml.safe_load(write_router_config(tmp_path).read_text())
    for entry in config["model_list"]:
        if entry["model_name"] == "claude":
            entry["model_info"]["supports_vision"] = False
        if entry["model_name"] == "gemini":
            entry["model_info"]["supports_audio_input"] = False
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(config))
    llm = LLMService(load_router_config(path, provider_env), store)

    assert llm.complete(photo_message()).provider == "gemini"
    with pytest.raises(AllProvidersFailed, match="no deployment takes audio") as failed:
        llm.complete(voice_message())
    assert set(failed.value.skipped.values()) == {"cannot take audio"}


def test_a_non_boolean_capability_override_stops_the_start(provider_env: dict, tmp_path: Path) -> None:
    config = yaml.safe_load(write_router_config(tmp_path).read_text())
    config["model_list"][0]["model_info"]["supports_vision"] = "yes"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    from bot.llm import RouterConfigError

    with pytest.raises(RouterConfigError, match=r"model_list\[0\]\.model_info\.supports_vision: must be true or false"):
        load_router_config(path, provider_env)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ([], "must not be an empty list"),
        ([{"type": "video", "video": {}}], "must be text, image_url or input_audio"),
        ([{"type": "text", "text": "  "}], r"\.text: must be a non-empty string"),
        ([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}], "base64 data URL"),
        ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}], "base64 data URL"),
        ([{"type": "image_url", "image_url": {"url": "data:text/html;base64,PGI+"}}], "base64 data URL"),
        ([{"type": "input_audio", "input_audio": {"data": "", "format": "ogg"}}], "non-empty base64"),
        ([{"type": "input_audio", "input_audio": {"data": "T2dnUw==", "format": "../x"}}], "format"),
    ],
)
def test_malformed_content_parts_are_refused_before_any_call(
    llm: LLMService, emulator: ProviderEmulator, content: list, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        llm.complete([{"role": "user", "content": content}])
    assert emulator.call_count() == 0


def test_content_parts_are_for_user_messages_only(llm: LLMService, emulator: ProviderEmulator) -> None:
    with pytest.raises(ValueError, match="content must be a non-empty string"):
        llm.complete([{"role": "system", "content": [{"type": "text", "text": "hi"}]}, *photo_message()])
    assert emulator.call_count() == 0


def test_a_voice_note_is_transcribed_and_recorded_once(
    llm: LLMService, emulator: ProviderEmulator, store: Store
) -> None:
    data, content_type = fixture("pidgin_voice_note")

    result = llm.transcribe(data, "voice.ogg", content_type, request_id="SMvoice")

    assert (result.text, result.provider) == (transcript("pidgin_voice_note"), "whisper")
    [row] = rows(store)
    assert (row["purpose"], row["provider"], row["model"], row["outcome"], row["request_id"]) == (
        "transcription", "whisper", "openai/whisper-1", "success", "SMvoice",
    )  # fmt: skip
    assert row["cost_usd"] > 0  # whisper is priced by the second of audio
    assert row["recorded_by"] in ("litellm_callback", "llm_service")
    assert [c.provider for c in emulator.calls()] == ["openai"]


def test_a_failed_transcription_is_classified_and_benches_the_deployment(
    llm: LLMService, emulator: ProviderEmulator, store: Store
) -> None:
    data, content_type = fixture("pidgin_voice_note")
    emulator.set_fault("openai", "credit_exhausted")

    with pytest.raises(AllProvidersFailed) as failed:
        llm.transcribe(data, "voice.ogg", content_type)
    assert [(a.provider, a.error_kind, a.purpose) for a in failed.value.attempts] == [
        ("whisper", "credit_exhausted", "transcription")
    ]
    assert [r["recorded_by"] for r in rows(store)] == ["litellm_callback"]  # LiteLLM reported it before raising
    assert llm.health.get("whisper").state.value == "benched"

    with pytest.raises(AllProvidersFailed) as again:
        llm.transcribe(data, "voice.ogg", content_type)
    assert again.value.skipped == {"whisper": "benched"} and emulator.call_count("openai") == 1


def test_a_benched_transcriber_comes_back_through_a_probe(
    llm: LLMService, emulator: ProviderEmulator, store: Store
) -> None:
    data, content_type = fixture("pidgin_voice_note")
    emulator.set_fault("openai", "credit_exhausted", times=1)
    with pytest.raises(AllProvidersFailed):
        llm.transcribe(data, "voice.ogg", content_type)

    probe = llm.probe("whisper")

    assert (probe.outcome, probe.purpose) == ("success", "selftest")
    assert llm.health.get("whisper").state.value == "healthy"
    assert llm.transcribe(data, "voice.ogg", content_type).provider == "whisper"


def test_an_override_stays_with_its_deployment(provider_env: dict, store: Store, tmp_path: Path) -> None:
    """LiteLLM's Router copies a deployment's model_info into its process-wide model map: the capability overrides
    are kept from it, so another service (or deployment) of the same model still gets LiteLLM's own answer."""
    config = yaml.safe_load(write_router_config(tmp_path).read_text())
    config["model_list"][0]["model_info"]["supports_vision"] = False
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(config))
    overridden = LLMService(load_router_config(path, provider_env), store)
    overridden.prepare()  # builds the Router

    plain = LLMService(load_router_config(None, provider_env), store)
    assert overridden.capable(overridden.setup.deployment("claude"), "vision") is False
    assert plain.capable(plain.setup.deployment("claude"), "vision") is True


def test_the_scheduled_selftest_brings_a_benched_transcriber_back_but_does_not_keep_it_warm(
    llm: LLMService, emulator: ProviderEmulator
) -> None:
    data, content_type = fixture("pidgin_voice_note")
    settings = AdminSettings(idle_probe_after_s=0)  # every idle chat provider is due too
    emulator.set_fault("openai", "credit_exhausted", times=1)
    with pytest.raises(AllProvidersFailed):
        llm.transcribe(data, "voice.ogg", content_type)

    assert due_probes(llm, settings, time.time())["whisper"] == "benched"
    run_scheduled_selftest(llm, settings)

    assert llm.health.get("whisper").state.value == "healthy"
    assert "whisper" not in due_probes(llm, settings, time.time())  # healthy: no idle probe of speech-to-text
