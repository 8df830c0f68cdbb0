"""Each fault kind at each position of the chain, through LiteLLM's real clients and the emulator:
who answers, how many calls each provider got, what was recorded, and the provider's new state."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from bot.llm import LLMService
from bot.llm.health import ProviderState
from bot.llm.service import PROBE_MAX_TOKENS
from tests.support import PROVIDERS, FakeClock, wait_until


@dataclass(frozen=True)
class Expected:
    error_kind: str
    calls: int  # calls the faulty provider receives in one request
    state: ProviderState


EXPECTED = {
    "credit_exhausted": Expected("credit_exhausted", 1, ProviderState.BENCHED),
    "auth_failed": Expected("auth_failed", 1, ProviderState.BENCHED),
    "rate_limited": Expected("rate_limited", 1, ProviderState.COOLING_DOWN),
    # One quick retry, and two failures in a row cool the provider down.
    "server_error": Expected("server_error", 2, ProviderState.COOLING_DOWN),
    "overloaded": Expected("server_error", 2, ProviderState.COOLING_DOWN),
    "reset": Expected("network", 2, ProviderState.COOLING_DOWN),
    "hang": Expected("timeout", 1, ProviderState.DEGRADED),
    "bad_output_html": Expected("bad_output", 1, ProviderState.DEGRADED),
    "bad_output_json": Expected("bad_output", 1, ProviderState.DEGRADED),
    "empty_output": Expected("bad_output", 1, ProviderState.DEGRADED),
    # Our request is the problem: fall back, but do not blame the provider.
    "bad_request": Expected("bad_request", 1, ProviderState.HEALTHY),
    "context_too_long": Expected("context_too_long", 1, ProviderState.HEALTHY),
    "content_policy": Expected("content_policy", 1, ProviderState.HEALTHY),
}


@pytest.mark.parametrize("position", range(3), ids=lambda i: f"{PROVIDERS[i]}-down")
@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_fault_at_each_position(fault: str, position: int, make_llm, emulator) -> None:
    faulty = PROVIDERS[position]
    expected = EXPECTED[fault]
    llm: LLMService = make_llm(timeout_s=0.5, request_deadline_s=10)
    emulator.set_fault(faulty, fault, retry_after=45)
    started = time.time()

    completion = llm.complete([{"role": "user", "content": "Mon frigo ne refroidit plus"}])

    answering = PROVIDERS[0] if position != 0 else PROVIDERS[1]
    assert completion.provider == answering
    assert completion.text.startswith(f"[{answering}]")
    assert emulator.call_count(faulty) == (expected.calls if position <= PROVIDERS.index(answering) else 0)
    if position > PROVIDERS.index(answering):
        return  # the fault sits behind the provider that answered: never reached
    assert emulator.call_count(answering) == 1
    rows = llm.ledger.for_request(completion.request_id)
    assert [(r["provider"], r["outcome"], r["error_kind"]) for r in rows] == [
        *[(faulty, "failure", expected.error_kind)] * expected.calls,
        (answering, "success", None),
    ]
    assert all(r["fallback_depth"] == PROVIDERS.index(r["provider"]) for r in rows)
    assert [a.error_kind for a in completion.attempts] == [expected.error_kind] * expected.calls + [None]
    record = llm.health.get(faulty)
    assert record.state == expected.state
    if fault == "rate_limited":
        assert record.until == pytest.approx(started + 45, abs=5)


@pytest.mark.parametrize("fault", ["credit_exhausted", "auth_failed", "rate_limited", "server_error"])
def test_unusable_provider_gets_no_more_customer_calls(fault: str, make_llm, emulator) -> None:
    clock = FakeClock()
    llm: LLMService = make_llm(clock=clock, timeout_s=0.5)
    emulator.set_fault("claude", fault)
    llm.complete([{"role": "user", "content": "premier message"}])
    calls_after_first = emulator.call_count("claude")

    for _ in range(5):
        assert llm.complete([{"role": "user", "content": "encore"}]).provider == "gemini"
    assert emulator.call_count("claude") == calls_after_first

    clock.advance(llm.setup.reliability.cooldown_max_s + 1)  # any cooldown is over; the fault is still there
    for _ in range(5):
        assert llm.complete([{"role": "user", "content": "toujours"}]).provider == "gemini"
    if llm.health.get("claude").state == ProviderState.BENCHED:
        assert emulator.call_count("claude") == calls_after_first  # only a self-test or an admin probes it
        return
    # Cooled: the first request to notice started one probe in the background, which failed and cooled it again.
    wait_until(lambda: (llm.health.get("claude").until or 0) > clock.now, what="the failed probe")
    later_calls = emulator.calls("claude")[calls_after_first:]
    assert [call.request.max_tokens for call in later_calls] == [PROBE_MAX_TOKENS]


def test_every_provider_down_raises_with_every_attempt(make_llm, emulator) -> None:
    from bot.llm import AllProvidersFailed

    llm: LLMService = make_llm()
    emulator.set_fault("claude", "credit_exhausted")
    emulator.set_fault("gemini", "rate_limited")
    emulator.set_fault("openai", "auth_failed")
    with pytest.raises(AllProvidersFailed) as raised:
        llm.complete([{"role": "user", "content": "allo"}])
    assert [(a.provider, a.error_kind) for a in raised.value.attempts] == [
        ("claude", "credit_exhausted"),
        ("gemini", "rate_limited"),
        ("openai", "auth_failed"),
    ]
    with pytest.raises(AllProvidersFailed) as again:
        llm.complete([{"role": "user", "content": "allo"}])
    assert again.value.attempts == []
    assert again.value.skipped == {"claude": "benched", "gemini": "cooling_down", "openai": "benched"}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("credit_exhausted", "credit_exhausted: Your credit balance is too low to access the Anthropic API."),
        ("auth_failed", "auth_failed: invalid x-api-key"),
        ("hang", "timeout: Read timed out."),
    ],
)
def test_health_reason_quotes_the_provider_not_the_wrappers(fault: str, reason: str, make_llm, emulator) -> None:
    llm: LLMService = make_llm(timeout_s=0.5)
    emulator.set_fault("claude", fault)
    llm.complete([{"role": "user", "content": "bonjour"}])
    assert llm.health.get("claude").reason.startswith(reason)
