"""Tests of the provider emulator: real payload shapes over HTTP, and LiteLLM 1.110.2 reacting to them.

The LITELLM_RAISES table pins what LiteLLM turns each emulated fault into; the project's error
classification is built on it, so a LiteLLM upgrade that changes it must fail here first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before importing litellm: no network fetch

import httpx
import litellm
import pytest

from bot.sandbox import ProviderEmulator
from bot.sandbox.emulator import EmulatedRequest
from bot.sandbox.provider_payloads import FAULTS, PROVIDERS

litellm.suppress_debug_info = True

MODELS = {
    "claude": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "openai": "openai/gpt-4o-mini",
}
PATHS = {
    "claude": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
    "openai": "/v1/chat/completions",
}
AUTH = {
    "claude": {"x-api-key": "sk-ant-secret-1234", "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": "AIza-secret-1234"},
    "openai": {"authorization": "Bearer sk-secret-1234"},
}
BODIES = {
    "claude": {
        "model": "claude-haiku-4-5",
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "max_tokens": 20,
    },
    "gemini": {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 20, "thinkingConfig": {"thinkingBudget": 0}},
    },
    "openai": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        "max_tokens": 20,
    },
}
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]

# (provider, fault) -> (HTTP status the emulator sends, fragments its body must contain)
EXPECTED_HTTP: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {
    ("claude", "credit_exhausted"): (
        400,
        ('"type":"invalid_request_error"', "Your credit balance is too low"),
    ),
    ("openai", "credit_exhausted"): (429, ('"type":"insufficient_quota"', '"code":"insufficient_quota"')),
    ("gemini", "credit_exhausted"): (
        429,
        ("RESOURCE_EXHAUSTED", "billing details", "google.rpc.QuotaFailure"),
    ),
    ("claude", "rate_limited"): (429, ('"type":"rate_limit_error"',)),
    ("openai", "rate_limited"): (429, ('"code":"rate_limit_exceeded"', "Rate limit reached for gpt-4o-mini")),
    ("gemini", "rate_limited"): (429, ("RESOURCE_EXHAUSTED", "google.rpc.RetryInfo", '"retryDelay":"30s"')),
    ("claude", "auth_failed"): (401, ('"type":"authentication_error"', "invalid x-api-key")),
    ("openai", "auth_failed"): (401, ('"code":"invalid_api_key"', "Incorrect API key provided")),
    ("gemini", "auth_failed"): (400, ("INVALID_ARGUMENT", "API key not valid", '"reason":"API_KEY_INVALID"')),
    ("claude", "server_error"): (500, ('"type":"api_error"', "Internal server error")),
    ("openai", "server_error"): (500, ('"type":"server_error"',)),
    ("gemini", "server_error"): (500, ('"status":"INTERNAL"',)),
    ("claude", "overloaded"): (529, ('"type":"overloaded_error"', '"message":"Overloaded"')),
    ("openai", "overloaded"): (503, ("The server is overloaded or not ready yet.",)),
    ("gemini", "overloaded"): (503, ('"status":"UNAVAILABLE"', "The model is overloaded.")),
    ("claude", "bad_request"): (400, ('"type":"invalid_request_error"',)),
    ("openai", "bad_request"): (400, ('"type":"invalid_request_error"', '"param":"max_tokens"')),
    ("gemini", "bad_request"): (400, ("INVALID_ARGUMENT", "google.rpc.BadRequest")),
    ("claude", "context_too_long"): (400, ("prompt is too long: 250000 tokens > 200000 maximum",)),
    ("openai", "context_too_long"): (400, ('"code":"context_length_exceeded"', "maximum context length is")),
    ("gemini", "context_too_long"): (
        400,
        ("INVALID_ARGUMENT", "exceeds the maximum number of tokens allowed"),
    ),
    ("claude", "content_policy"): (400, ("Output blocked by content filtering policy",)),
    ("openai", "content_policy"): (400, ('"code":"content_policy_violation"',)),
    ("gemini", "content_policy"): (200, ('"blockReason":"SAFETY"',)),
}

# (provider, fault) -> (litellm exception class, .status_code), as measured against litellm 1.110.2.
LITELLM_RAISES: dict[tuple[str, str], tuple[str, int]] = {
    ("claude", "credit_exhausted"): ("BadRequestError", 400),
    ("gemini", "credit_exhausted"): ("RateLimitError", 429),
    ("openai", "credit_exhausted"): ("RateLimitError", 429),
    ("claude", "rate_limited"): ("RateLimitError", 429),
    ("gemini", "rate_limited"): ("RateLimitError", 429),
    ("openai", "rate_limited"): ("RateLimitError", 429),
    ("claude", "auth_failed"): ("AuthenticationError", 401),
    ("gemini", "auth_failed"): ("AuthenticationError", 401),
    ("openai", "auth_failed"): ("AuthenticationError", 401),
    ("claude", "server_error"): ("InternalServerError", 500),
    ("gemini", "server_error"): ("InternalServerError", 500),
    ("openai", "server_error"): ("InternalServerError", 500),
    ("claude", "overloaded"): ("InternalServerError", 500),
    ("gemini", "overloaded"): ("InternalServerError", 500),
    ("openai", "overloaded"): ("ServiceUnavailableError", 503),
    ("claude", "bad_request"): ("BadRequestError", 400),
    ("gemini", "bad_request"): ("BadRequestError", 400),
    ("openai", "bad_request"): ("BadRequestError", 400),
    ("claude", "context_too_long"): ("ContextWindowExceededError", 400),
    ("gemini", "context_too_long"): ("ContextWindowExceededError", 400),
    ("openai", "context_too_long"): ("ContextWindowExceededError", 400),
    ("claude", "content_policy"): ("ContentPolicyViolationError", 400),
    ("openai", "content_policy"): ("BadRequestError", 400),
    ("claude", "bad_output_html"): ("APIConnectionError", 500),
    ("gemini", "bad_output_html"): ("BadRequestError", 422),
    ("openai", "bad_output_html"): ("InternalServerError", 500),
    ("claude", "bad_output_json"): ("APIConnectionError", 500),
    ("gemini", "bad_output_json"): ("BadRequestError", 422),
    ("openai", "bad_output_json"): ("InternalServerError", 500),
    ("claude", "hang"): ("Timeout", 408),
    ("gemini", "hang"): ("Timeout", 408),
    ("openai", "hang"): ("Timeout", 408),
    ("claude", "reset"): ("InternalServerError", 500),
    ("gemini", "reset"): ("APIConnectionError", 500),
    ("openai", "reset"): ("InternalServerError", 500),
}
# Faults LiteLLM answers without raising: the reply is empty, the caller must notice.
LITELLM_RETURNS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("gemini", "content_policy"): (None, "content_filter"),
    ("claude", "empty_output"): (None, "stop"),
    ("gemini", "empty_output"): (None, "stop"),
    ("openai", "empty_output"): ("", "stop"),
}
HANG_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def shared_emulator():
    with ProviderEmulator() as emulator:
        yield emulator


@pytest.fixture
def emu(shared_emulator: ProviderEmulator):
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()


@pytest.fixture(scope="module")
def http(shared_emulator: ProviderEmulator):
    with httpx.Client(base_url=shared_emulator.base_url, timeout=5) as client:
        yield client


def post_provider(http: httpx.Client, provider: str, **kwargs) -> httpx.Response:
    return http.post(PATHS[provider], json=BODIES[provider], headers=AUTH[provider], **kwargs)


# As router_config sets it: without it Gemini 2.5 spends a small max_tokens on thinking (see below).
NO_THINKING = {"gemini": {"reasoning_effort": "none"}}


def complete(emu: ProviderEmulator, provider: str, **kwargs):
    kwargs = {**NO_THINKING.get(provider, {}), **kwargs}
    return litellm.completion(
        model=MODELS[provider],
        api_base=emu.api_base(provider),
        api_key="test-key",
        messages=MESSAGES,
        max_tokens=20,
        num_retries=0,
        **kwargs,
    )


def hang_in_thread(url: str, provider: str, timeout: float = 5.0) -> tuple[threading.Thread, dict]:
    """Fire one provider request from a thread; the outcome lands in the returned dict."""
    outcome: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["response"] = httpx.post(url + PATHS[provider], json=BODIES[provider], timeout=timeout)
        except httpx.HTTPError as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_tables_cover_every_provider_and_fault() -> None:
    transport_or_output = {"bad_output_html", "bad_output_json", "empty_output", "hang", "reset"}
    for provider in PROVIDERS:
        for fault in FAULTS:
            key = (provider, fault)
            assert key in LITELLM_RAISES or key in LITELLM_RETURNS, key
            assert key in EXPECTED_HTTP or fault in transport_or_output, key


# --- success ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_litellm_gets_reply_with_usage(emu: ProviderEmulator, provider: str) -> None:
    response = complete(emu, provider)

    assert response.choices[0].message.content == f"[{provider}] hello there"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response._hidden_params["response_cost"] > 0
    [call] = emu.calls(provider)
    assert (call.status, call.fault, call.method) == (200, None, "POST")
    assert call.model == MODELS[provider].split("/", 1)[1]
    assert call.request.messages == MESSAGES
    assert call.request.max_tokens == 20


@pytest.mark.parametrize("provider", PROVIDERS)
def test_raw_success_body_has_real_shape(emu: ProviderEmulator, http: httpx.Client, provider: str) -> None:
    response = post_provider(http, provider)

    assert response.status_code == 200
    body = response.json()
    if provider == "claude":
        assert body["type"] == "message" and body["id"].startswith("msg_")
        assert body["content"] == [{"type": "text", "text": "[claude] hello there"}]
        assert body["stop_reason"] == "end_turn" and body["usage"]["input_tokens"] > 0
    elif provider == "gemini":
        assert body["candidates"][0]["content"] == {
            "parts": [{"text": "[gemini] hello there"}],
            "role": "model",
        }
        assert body["candidates"][0]["finishReason"] == "STOP"
        assert body["modelVersion"] == "gemini-2.5-flash" and body["usageMetadata"]["totalTokenCount"] > 0
    else:
        assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
        assert body["choices"][0]["message"]["content"] == "[openai] hello there"
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_gemini_thinking_eats_a_small_max_tokens_unless_disabled(emu: ProviderEmulator) -> None:
    thinking = complete(emu, "gemini", reasoning_effort=None)
    assert thinking.choices[0].message.content in (None, "")
    assert thinking.choices[0].finish_reason == "length"
    assert emu.calls("gemini")[0].request.body["generationConfig"].get("thinkingConfig") is None

    answered = complete(emu, "gemini")
    assert answered.choices[0].message.content == "[gemini] hello there"
    assert emu.calls("gemini")[1].request.body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 0


def test_gemini_accepts_v1beta_api_base(emu: ProviderEmulator) -> None:
    response = litellm.completion(
        model=MODELS["gemini"],
        api_base=emu.base_url + "/v1beta",
        api_key="test-key",
        messages=MESSAGES,
        max_tokens=20,
        num_retries=0,
        **NO_THINKING["gemini"],
    )

    assert response.choices[0].message.content == "[gemini] hello there"
    assert emu.calls("gemini")[0].path == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_keep_alive_reuses_one_connection(emu: ProviderEmulator, http: httpx.Client) -> None:
    ports = set()
    for provider in PROVIDERS:
        response = post_provider(http, provider)
        assert response.status_code == 200 and response.http_version == "HTTP/1.1"
        assert response.headers.get("connection", "").lower() != "close"
        ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    assert len(ports) == 1


# --- faults over raw HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "fault"), list(EXPECTED_HTTP))
def test_fault_sends_real_error_payload(emu: ProviderEmulator, http: httpx.Client, provider: str, fault: str) -> None:
    status, fragments = EXPECTED_HTTP[provider, fault]
    emu.set_fault(provider, fault)

    response = post_provider(http, provider)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    response.json()  # well-formed
    for fragment in fragments:
        assert fragment in response.text
    [call] = emu.calls(provider)
    assert (call.fault, call.status) == (fault, status)


@pytest.mark.parametrize("provider", ["claude", "openai"])
def test_rate_limit_sends_configured_retry_after_header(
    emu: ProviderEmulator, http: httpx.Client, provider: str
) -> None:
    emu.set_fault(provider, "rate_limited", retry_after=7)

    assert post_provider(http, provider).headers["retry-after"] == "7"


def test_gemini_rate_limit_retry_delay_is_configurable(emu: ProviderEmulator, http: httpx.Client) -> None:
    emu.set_fault("gemini", "rate_limited", retry_after=12)

    details = post_provider(http, "gemini").json()["error"]["details"]

    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"} in details


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_outputs_are_200_with_unusable_bodies(emu: ProviderEmulator, http: httpx.Client, provider: str) -> None:
    emu.set_fault(provider, "bad_output_html")
    html = post_provider(http, provider)
    emu.set_fault(provider, "bad_output_json")
    truncated = post_provider(http, provider)
    emu.set_fault(provider, "empty_output")
    empty = post_provider(http, provider)

    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text.startswith("<!DOCTYPE html>")
    assert truncated.status_code == 200 and truncated.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text)
    assert empty.status_code == 200
    assert '"text":""' in empty.text or '"content":""' in empty.text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reset_drops_the_connection(emu: ProviderEmulator, provider: str) -> None:
    emu.set_fault(provider, "reset")

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.post(emu.base_url + PATHS[provider], json=BODIES[provider], timeout=5)
    [call] = emu.calls(provider)
    assert (call.fault, call.status) == ("reset", None)


def test_hang_times_out_client(emu: ProviderEmulator) -> None:
    emu.set_fault("claude", "hang")

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.base_url + PATHS["claude"], json=BODIES["claude"], timeout=HANG_TIMEOUT)
    [call] = emu.calls("claude")
    assert (call.fault, call.status) == ("hang", None)


def test_hang_is_released_by_clear_fault_and_blocks_no_one(emu: ProviderEmulator, http: httpx.Client) -> None:
    emu.set_fault("claude", "hang", times=1)
    thread, outcome = hang_in_thread(emu.base_url, "claude")
    assert emu.wait_for_calls(1, "claude")

    assert post_provider(http, "claude").status_code == 200  # hang was times=1: the next claude call is fine
    assert post_provider(http, "gemini").status_code == 200
    assert thread.is_alive()
    released_at = time.monotonic()
    emu.clear_fault("claude")
    thread.join(10)

    # Released at once rather than after the 120 s hang; the margin is for a loaded CI machine.
    assert not thread.is_alive() and time.monotonic() - released_at < 10
    assert isinstance(outcome["error"], httpx.RemoteProtocolError)


def test_hang_ends_after_hang_seconds(emu: ProviderEmulator) -> None:
    emu.set_fault("openai", "hang", hang_seconds=0.1)

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(emu.base_url + PATHS["openai"], json=BODIES["openai"], timeout=5)


def test_stop_releases_hanging_and_delayed_requests_promptly() -> None:
    emulator = ProviderEmulator().start()
    emulator.set_fault("gemini", "hang")
    emulator.set_latency("openai", 60)
    hanging, hang_outcome = hang_in_thread(emulator.base_url, "gemini")
    delayed, delay_outcome = hang_in_thread(emulator.base_url, "openai")
    assert emulator.wait_for_calls(2)

    started = time.monotonic()
    emulator.stop()
    hanging.join(10)
    delayed.join(10)

    assert time.monotonic() - started < 10  # not the 60 s latency nor the 120 s hang
    assert isinstance(hang_outcome["error"], httpx.HTTPError)
    assert isinstance(delay_outcome["error"], httpx.HTTPError)
    with pytest.raises(httpx.ConnectError):
        httpx.post(emulator.base_url + PATHS["claude"], json=BODIES["claude"], timeout=1)


def test_latency_delays_answers(emu: ProviderEmulator, http: httpx.Client) -> None:
    emu.set_latency("gemini", 0.2)
    emu.set_fault("openai", "server_error")
    emu.set_latency("openai", 0.2)

    started = time.monotonic()
    assert post_provider(http, "gemini").status_code == 200
    assert post_provider(http, "openai").status_code == 500
    elapsed = time.monotonic() - started
    assert post_provider(http, "claude").status_code == 200

    assert elapsed >= 0.4


# --- faults through LiteLLM -------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "fault"), list(LITELLM_RAISES))
def test_litellm_raises_on_fault(emu: ProviderEmulator, provider: str, fault: str) -> None:
    exc_name, status_code = LITELLM_RAISES[provider, fault]
    emu.set_fault(provider, fault)

    with pytest.raises(Exception) as raised:
        complete(emu, provider, **({"timeout": HANG_TIMEOUT} if fault == "hang" else {}))

    assert (type(raised.value).__name__, getattr(raised.value, "status_code", None)) == (
        exc_name,
        status_code,
    )
    assert emu.call_count(provider) == 1  # num_retries=0: no hidden retry by LiteLLM or the OpenAI SDK


@pytest.mark.parametrize(("provider", "fault"), list(LITELLM_RETURNS))
def test_litellm_returns_empty_reply_on_silent_fault(emu: ProviderEmulator, provider: str, fault: str) -> None:
    content, finish_reason = LITELLM_RETURNS[provider, fault]
    emu.set_fault(provider, fault)

    response = complete(emu, provider)

    assert (response.choices[0].message.content, response.choices[0].finish_reason) == (
        content,
        finish_reason,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fault_for_times_then_healthy(emu: ProviderEmulator, provider: str) -> None:
    emu.set_fault(provider, "server_error", times=1)

    with pytest.raises(litellm.InternalServerError):
        complete(emu, provider)
    assert complete(emu, provider).choices[0].message.content == f"[{provider}] hello there"

    assert [(c.fault, c.status) for c in emu.calls(provider)] == [("server_error", 500), (None, 200)]


# --- responders and records -------------------------------------------------------------------------------


def test_responder_text_is_sent_verbatim_and_sees_normalised_request(emu: ProviderEmulator) -> None:
    seen: list[EmulatedRequest] = []

    def structured(request: EmulatedRequest) -> str:
        seen.append(request)
        return '{"intent": "book", "service": "plumber"}'

    emu.set_responder(None, structured)
    emu.set_responder("openai", lambda request: "openai-only")

    replies = {provider: complete(emu, provider).choices[0].message.content for provider in PROVIDERS}

    assert replies == {"claude": '{"intent": "book", "service": "plumber"}', "gemini": replies["claude"],
                       "openai": "openai-only"}  # fmt: skip
    assert [r.provider for r in seen] == ["claude", "gemini"]
    for request in seen:
        assert request.messages == MESSAGES and request.max_tokens == 20 and request.last_user_text == "hello there"


def test_records_never_hold_the_api_key(emu: ProviderEmulator, http: httpx.Client) -> None:
    for provider in PROVIDERS:
        post_provider(http, provider)
    http.post("/v1beta/models/gemini-2.5-flash:generateContent?key=AIza-query-5678", json=BODIES["gemini"])

    calls = emu.calls()
    dumped = json.dumps([call.to_json() for call in calls])
    assert "secret" not in dumped and "query-5678" not in dumped
    assert calls[0].request.headers["x-api-key"] == "***1234"
    assert calls[1].request.headers["x-goog-api-key"] == "***1234"
    assert calls[2].request.headers["authorization"] == "Bearer ***1234"
    assert calls[3].path.endswith("?key=***5678")


def test_broken_responder_becomes_a_server_error(emu: ProviderEmulator, http: httpx.Client) -> None:
    emu.set_responder("claude", lambda request: 1 / 0)
    emu.set_responder("openai", lambda request: {"not": "a string"})

    assert post_provider(http, "claude").status_code == 500
    assert post_provider(http, "openai").status_code == 500
    assert post_provider(http, "gemini").status_code == 200


def test_reset_clears_faults_latency_responders_and_records(emu: ProviderEmulator, http: httpx.Client) -> None:
    emu.set_fault("claude", "auth_failed")
    emu.set_responder(None, lambda request: "scripted")
    post_provider(http, "claude")
    emu.set_latency("claude", 5)

    emu.reset()

    assert emu.calls() == [] and emu.call_count("claude") == 0
    response = post_provider(http, "claude")
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "[claude] hello there"


@pytest.mark.parametrize(
    ("provider", "headers", "fragment"),
    [
        ("claude", AUTH["claude"], '"type":"not_found_error"'),
        ("gemini", AUTH["gemini"], '"status":"NOT_FOUND"'),
        ("openai", AUTH["openai"], "Invalid URL (POST /v1/unknown)"),
    ],
)
def test_unknown_path_is_404_in_provider_style(
    emu: ProviderEmulator, http: httpx.Client, provider: str, headers: dict, fragment: str
) -> None:
    response = http.post("/v1/unknown", json={}, headers=headers)

    assert response.status_code == 404 and fragment in response.text
    assert [(c.provider, c.status) for c in emu.calls()] == [(provider, 404)]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unparseable_body_is_400_in_provider_style(emu: ProviderEmulator, http: httpx.Client, provider: str) -> None:
    response = http.post(PATHS[provider], content=b"{not json", headers=AUTH[provider])

    assert response.status_code == 400 and "error" in response.json()


def test_wrongly_shaped_body_is_400_and_spends_no_fault(emu: ProviderEmulator, http: httpx.Client) -> None:
    emu.set_fault("openai", "server_error", times=1)

    response = http.post(PATHS["openai"], json={"model": "gpt-4o-mini", "messages": "hello"})

    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert post_provider(http, "openai").status_code == 500  # the times=1 fault was still there


def test_records_are_bounded_but_counts_stay_exact() -> None:
    with ProviderEmulator(max_recorded=2) as emulator, httpx.Client(base_url=emulator.base_url) as client:
        for _ in range(3):
            post_provider(client, "gemini")

        assert emulator.call_count("gemini") == 3 and len(emulator.calls("gemini")) == 2


def test_python_api_rejects_unknown_names(emu: ProviderEmulator) -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        emu.set_fault("anthropic", "hang")
    with pytest.raises(ValueError, match="unknown fault"):
        emu.set_fault("claude", "meltdown")
    with pytest.raises(ValueError, match="times"):
        emu.set_fault("claude", "hang", times=0)
    assert emu.api_base("openai") == emu.base_url + "/v1" and emu.api_base("claude") == emu.base_url


# --- control API ------------------------------------------------------------------------------------------


def test_control_api_sets_faults_latency_and_reads_calls(emu: ProviderEmulator, http: httpx.Client) -> None:
    set_fault = {"provider": "openai", "fault": "rate_limited", "times": 2, "retry_after": 9}
    assert http.post("/_emulator/faults", json=set_fault).json() == {"ok": True}
    assert http.post("/_emulator/latency", json={"provider": "gemini", "seconds": 0}).status_code == 200

    statuses = [post_provider(http, "openai").status_code for _ in range(3)]
    post_provider(http, "claude")
    calls = http.get("/_emulator/calls", params={"provider": "openai"}).json()["calls"]

    assert statuses == [429, 429, 200]
    assert [(c["fault"], c["status"]) for c in calls] == [
        ("rate_limited", 429),
        ("rate_limited", 429),
        (None, 200),
    ]
    assert calls[0]["request"]["messages"] == MESSAGES
    assert len(http.get("/_emulator/calls").json()["calls"]) == 4
    assert http.get("/_emulator/health").json() == {"ok": True}


def test_control_api_clears_fault_and_resets(emu: ProviderEmulator, http: httpx.Client) -> None:
    http.post("/_emulator/faults", json={"provider": "claude", "fault": "overloaded"})
    assert post_provider(http, "claude").status_code == 529
    http.post("/_emulator/faults", json={"provider": "claude", "fault": None})
    assert post_provider(http, "claude").status_code == 200

    assert http.post("/_emulator/reset").status_code == 200
    assert http.get("/_emulator/calls").json() == {"calls": []}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/_emulator/faults", {"provider": "anthropic", "fault": "hang"}, 400),
        ("/_emulator/faults", {"provider": "claude", "fault": "meltdown"}, 400),
        ("/_emulator/faults", {"provider": "claude", "fault": "hang", "times": "x"}, 400),
        ("/_emulator/latency", {"provider": "nobody", "seconds": 1}, 400),
        ("/_emulator/latency", {"provider": "claude", "seconds": -1}, 400),
        ("/_emulator/nothing", {}, 404),
    ],
)
def test_control_api_rejects_bad_requests(
    emu: ProviderEmulator, http: httpx.Client, path: str, body: dict, status: int
) -> None:
    response = http.post(path, json=body)

    assert response.status_code == status and "error" in response.json()
    assert http.get("/_emulator/calls", params={"provider": "nobody"}).status_code == 400


def test_main_serves_until_sigterm() -> None:
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox.emulator", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(base_url + "/_emulator/health", timeout=5).json() == {"ok": True}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.stdout.close()
