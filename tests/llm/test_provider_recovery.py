"""Recovery and cooldown timing, with a fake clock for ProviderHealth and real calls to the emulator."""

from __future__ import annotations

import threading

import pytest

from bot.llm import AllProvidersFailed, LLMService
from bot.llm.error_kinds import Classified, ErrorKind
from bot.llm.health import Admission, ProviderHealth, ProviderState
from tests.support import FakeClock, wait_until

MESSAGE = [{"role": "user", "content": "Il y a une fuite sous l'évier"}]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


def test_benched_provider_returns_after_a_successful_probe(make_llm, emulator) -> None:
    llm: LLMService = make_llm()
    emulator.set_fault("claude", "credit_exhausted")
    assert llm.complete(MESSAGE).provider == "gemini"
    assert llm.health.get("claude").state == ProviderState.BENCHED

    failed_probe = llm.probe("claude")
    assert (failed_probe.outcome, failed_probe.error_kind) == ("failure", "credit_exhausted")
    assert llm.health.get("claude").state == ProviderState.BENCHED

    emulator.clear_fault("claude")  # credits topped up
    assert llm.complete(MESSAGE).provider == "gemini", "benched: no traffic until a probe passes"
    probe = llm.probe("claude")
    assert probe.outcome == "success"
    assert llm.health.get("claude").state == ProviderState.HEALTHY
    assert llm.complete(MESSAGE).provider == "claude"
    events = [
        (e["from_state"], e["to_state"], e["actor"])
        for e in llm.store.db.query("select * from provider_events where provider = 'claude' order by id")
    ]
    assert events == [("healthy", "benched", "traffic"), ("benched", "healthy", "probe")]
    purposes = [r["purpose"] for r in llm.store.db.query("select purpose from llm_calls where provider='claude'")]
    assert purposes.count("selftest") == 2


def test_admin_reset_brings_a_benched_provider_back(make_llm, emulator) -> None:
    llm: LLMService = make_llm()
    emulator.set_fault("claude", "auth_failed", times=1)
    llm.complete(MESSAGE)
    llm.health.reset("claude", actor="admin:test")
    assert llm.complete(MESSAGE).provider == "claude"


def test_cooled_provider_returns_once_a_probe_passes_after_its_cooldown(make_llm, emulator, clock: FakeClock) -> None:
    llm: LLMService = make_llm(clock=clock, cooldown_base_s=60)
    emulator.set_fault("claude", "server_error")
    assert llm.complete(MESSAGE).provider == "gemini"
    record = llm.health.get("claude")
    assert record.state == ProviderState.COOLING_DOWN and record.until == clock.now + 60
    emulator.clear_fault("claude")

    clock.advance(59)
    calls = emulator.call_count("claude")
    assert llm.complete(MESSAGE).provider == "gemini"
    assert emulator.call_count("claude") == calls

    clock.advance(2)
    served = llm.complete(MESSAGE)  # noticed the cooldown is over: probes claude off this request
    assert [a.provider for a in served.attempts] == ["gemini"]
    wait_until(lambda: llm.health.get("claude").state == ProviderState.HEALTHY, what="the background probe")
    assert emulator.call_count("claude") == calls + 1
    assert llm.complete(MESSAGE).provider == "claude"


def test_failed_probe_doubles_the_cooldown(make_llm, emulator, clock: FakeClock) -> None:
    llm: LLMService = make_llm(clock=clock, cooldown_base_s=60)
    emulator.set_fault("claude", "server_error")
    llm.complete(MESSAGE)
    clock.advance(61)
    calls = emulator.call_count("claude")

    served = llm.complete(MESSAGE)
    assert [a.provider for a in served.attempts] == ["gemini"]
    wait_until(lambda: llm.health.get("claude").cooldown_level == 2, what="the failed probe")
    assert emulator.call_count("claude") == calls + 1, "a probe gets one call, no quick retry"
    record = llm.health.get("claude")
    assert record.state == ProviderState.COOLING_DOWN and record.until == clock.now + 120


def test_rate_limit_cools_for_retry_after_then_serves(make_llm, emulator, clock: FakeClock) -> None:
    llm: LLMService = make_llm(clock=clock)
    emulator.set_fault("openai", "rate_limited", retry_after=20)
    emulator.set_fault("claude", "credit_exhausted")
    emulator.set_fault("gemini", "auth_failed")
    with pytest.raises(Exception):  # noqa: B017 - every provider down
        llm.complete(MESSAGE)
    assert llm.health.get("openai").until == clock.now + 20
    emulator.clear_fault("openai")
    clock.advance(21)
    with pytest.raises(AllProvidersFailed):  # the limit is over, but no customer request tests it
        llm.complete(MESSAGE)
    wait_until(lambda: llm.health.get("openai").state == ProviderState.HEALTHY, what="the background probe")
    assert llm.complete(MESSAGE).provider == "openai"


def test_only_one_worker_holds_the_probe_lease(store, clock: FakeClock, make_llm) -> None:
    health = make_llm(clock=clock).health
    second_worker = ProviderHealth(store, health.reliability, clock)
    health.record_failure("claude", Classified(ErrorKind.RATE_LIMITED, 429, 10.0), "slow down")
    assert health.admit("claude") is Admission.REFUSED
    assert health.claim_probe("claude") is False  # still cooling
    clock.advance(11)
    assert health.admit("claude") is second_worker.admit("claude") is Admission.PROBE_DUE  # refused, probe due
    assert health.claim_probe("claude") is True
    assert second_worker.claim_probe("claude") is False
    assert second_worker.admit("claude") is Admission.REFUSED  # someone is probing it
    clock.advance(health.reliability.trial_lease_s + 1)  # the probe's holder died: the lease expires
    assert second_worker.admit("claude") is Admission.PROBE_DUE
    assert second_worker.claim_probe("claude") is True


def test_cooldown_growth_is_capped(store, clock: FakeClock, make_llm) -> None:
    health = make_llm(clock=clock, cooldown_base_s=100, cooldown_max_s=250).health
    failure = Classified(ErrorKind.TIMEOUT, None, None)
    cooldowns = []
    for _ in range(5):
        health.record_failure("gemini", failure, "timed out")
        record = health.get("gemini")
        if record.state == ProviderState.COOLING_DOWN:
            cooldowns.append(record.until - clock.now)
            clock.advance(record.until - clock.now + 1)
    assert cooldowns == [100, 200, 250, 250]


def test_disabled_provider_gets_nothing_until_enabled(make_llm, emulator) -> None:
    llm: LLMService = make_llm()
    llm.health.set_disabled("claude", True, actor="admin:test")
    assert llm.complete(MESSAGE).provider == "gemini"
    assert llm.probe("gemini").outcome == "success"
    assert emulator.call_count("claude") == 0
    llm.health.set_disabled("claude", False, actor="admin:test")
    assert llm.complete(MESSAGE).provider == "claude"


def test_no_quick_retry_once_the_first_failure_cooled_the_provider(make_llm, emulator) -> None:
    llm: LLMService = make_llm()
    llm.health.record_failure("claude", Classified(ErrorKind.SERVER_ERROR, 500, None), "an earlier 5xx")
    emulator.set_fault("claude", "server_error")

    assert llm.complete(MESSAGE).provider == "gemini"

    assert emulator.call_count("claude") == 1, "the retry would call a provider that is now cooling down"
    record = llm.health.get("claude")
    assert (record.state, record.cooldown_level) == (ProviderState.COOLING_DOWN, 1)


def test_a_probe_lease_is_not_granted_during_a_cooldown_that_began_meanwhile(store, make_llm) -> None:
    """Worker A saw an ended cooldown; before it claims the probe, B's probe fails and cools again."""
    clock = FakeClock(1_800_000_000.0)
    worker_b = make_llm(clock=clock, cooldown_base_s=10).health
    worker_b.record_failure("claude", Classified(ErrorKind.RATE_LIMITED, 429, 5.0), "slow down")
    clock.advance(6)
    assert worker_b.claim_probe("claude") is True

    def clock_at_which_b_fails() -> float:
        if worker_b.get("claude").trial_lease_until is not None:  # B's trial fails right now
            worker_b.record_failure("claude", Classified(ErrorKind.TIMEOUT, None, None), "timed out")
        return clock()

    worker_a = ProviderHealth(store, worker_b.reliability, clock_at_which_b_fails)
    assert worker_a.claim_probe("claude") is False
    assert worker_a.admit("claude") is Admission.REFUSED
    assert worker_a.get("claude").until > clock.now


def test_retry_after_is_capped_by_the_longest_cooldown(store, clock: FakeClock, make_llm) -> None:
    health = make_llm(clock=clock, cooldown_max_s=600).health
    health.record_failure("gemini", Classified(ErrorKind.RATE_LIMITED, 429, 86_400.0), "come back tomorrow")
    assert health.get("gemini").until == clock.now + 600


def test_calls_in_flight_when_a_provider_fails_do_not_lengthen_its_cooldown(make_llm, emulator, clock) -> None:
    """Six customers' calls were on their way when Claude went down: its cooldown starts once, at the base length,
    whatever order their failures land in; only a failed probe doubles it."""
    llm: LLMService = make_llm(clock=clock, cooldown_base_s=15, failures_before_cooldown=2)
    emulator.set_fault("claude", "server_error")
    emulator.set_latency("claude", 0.3)  # all six are admitted before the first failure lands
    start = threading.Barrier(6)

    def customer() -> None:
        start.wait()
        llm.complete(MESSAGE)

    customers = [threading.Thread(target=customer) for _ in range(6)]
    for thread in customers:
        thread.start()
    for thread in customers:
        thread.join(timeout=30)

    record = llm.health.get("claude")
    assert record.state == ProviderState.COOLING_DOWN and record.consecutive_failures >= 6
    assert (record.cooldown_level, record.until) == (1, record.since + 15)
    clock.advance(16)  # over: the probe fails, and that one doubles it
    llm.probe("claude")
    assert llm.health.get("claude").cooldown_level == 2
    assert llm.health.get("claude").until == clock.now + 30
