"""No customer pays for a trial: a provider whose cooldown is over is tested by a probe off the request path
(started by the process that notices, or by the scheduler's backstop), and customers get it back only once a
probe has passed. Real calls through LiteLLM to the emulator; a fake clock for the cooldowns."""

from __future__ import annotations

import threading

import pytest

from bot.admin.selftest import run_cooldown_probes, run_scheduled_selftest
from bot.admin.settings import AdminSettings
from bot.llm import AllProvidersFailed, LLMService
from bot.llm.health import ProviderState
from bot.llm.service import PROBE_PROMPT
from tests.support import PROVIDERS, FakeClock, wait_until

MESSAGE = [{"role": "user", "content": "Mon climatiseur fait un bruit bizarre"}]
PROBE_TEXT = PROBE_PROMPT[0]["content"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


def customer_calls(emulator, provider: str) -> int:
    """Requests ``provider`` received that were not probes."""
    return sum(1 for call in emulator.calls(provider) if call.request.last_user_text != PROBE_TEXT)


def probe_calls(emulator, provider: str) -> int:
    return sum(1 for call in emulator.calls(provider) if call.request.last_user_text == PROBE_TEXT)


class HeldReply:
    """A provider that answers "OK" only once the test lets it: a probe in flight stays in flight."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def __call__(self, request) -> str:
        self.released.wait(10)  # bounded: a failing test must not leave the emulator's thread stuck
        return "OK"


def test_a_hanging_provider_comes_back_through_probes_never_through_customers(
    make_llm, emulator, clock: FakeClock
) -> None:
    llm: LLMService = make_llm(clock=clock, timeout_s=2.0, cooldown_base_s=60)
    emulator.set_fault("claude", "hang")
    for _ in range(2):  # two timeouts in a row: cooling down
        assert llm.complete(MESSAGE).provider == "gemini"
    assert llm.health.get("claude").state == ProviderState.COOLING_DOWN
    assert customer_calls(emulator, "claude") == 2

    clock.advance(59)
    assert llm.complete(MESSAGE).provider == "gemini"
    assert emulator.call_count("claude") == 2, "cooling: neither called nor probed"

    # The cooldown is over and claude still hangs: the request that notices goes straight on without it.
    clock.advance(2)
    served = llm.complete(MESSAGE)
    assert [a.provider for a in served.attempts] == ["gemini"]
    assert emulator.wait_for_calls(3, "claude"), "the request that noticed started a probe"
    assert llm.complete(MESSAGE).provider == "gemini"
    wait_until(lambda: llm.health.get("claude").cooldown_level == 2, what="the failed probe cooling claude again")
    record = llm.health.get("claude")
    assert (record.state, record.until, record.trial_lease_until) == (ProviderState.COOLING_DOWN, clock.now + 120, None)
    assert (customer_calls(emulator, "claude"), probe_calls(emulator, "claude")) == (2, 1)

    # Claude answers again, but only when the test lets it: customers must not wait on the probe meanwhile.
    held = HeldReply()
    emulator.clear_fault("claude")
    emulator.set_responder("claude", held)
    clock.advance(121)
    served = llm.complete(MESSAGE)
    assert [a.provider for a in served.attempts] == ["gemini"]
    assert emulator.wait_for_calls(4, "claude")
    assert llm.health.get("claude").state == ProviderState.COOLING_DOWN, "back only once the probe has passed"
    assert llm.complete(MESSAGE).provider == "gemini"
    assert (customer_calls(emulator, "claude"), probe_calls(emulator, "claude")) == (2, 2), "one probe, no customer"

    held.released.set()
    wait_until(lambda: llm.health.get("claude").state == ProviderState.HEALTHY, what="the passing probe")
    assert llm.complete(MESSAGE).provider == "claude"
    assert (customer_calls(emulator, "claude"), probe_calls(emulator, "claude")) == (3, 2)
    events = [
        (e["from_state"], e["to_state"], e["actor"])
        for e in llm.store.db.query("select * from provider_events where provider = 'claude' order by id")
    ]
    assert events == [
        ("healthy", "degraded", "traffic"),
        ("degraded", "cooling_down", "traffic"),
        ("cooling_down", "cooling_down", "probe:cooldown_over"),
        ("cooling_down", "healthy", "probe:cooldown_over"),
    ]
    probes = list(llm.store.db.query("select purpose, outcome, error_kind from llm_calls where provider = 'claude'"))
    assert [(p["purpose"], p["outcome"], p["error_kind"]) for p in probes] == [
        ("chat", "failure", "timeout"),
        ("chat", "failure", "timeout"),
        ("selftest", "failure", "timeout"),
        ("selftest", "success", None),
        ("chat", "success", None),
    ]


def test_with_every_provider_cooling_customers_get_all_providers_failed_and_none_is_a_trial(
    make_llm, emulator, clock: FakeClock
) -> None:
    llm: LLMService = make_llm(clock=clock)
    for provider in PROVIDERS:
        emulator.set_fault(provider, "rate_limited", retry_after=20, times=1)
    with pytest.raises(AllProvidersFailed):
        llm.complete(MESSAGE)
    held = HeldReply()
    emulator.set_responder(None, held)
    clock.advance(21)

    for _ in range(2):  # the first request starts the probes; the second finds them under way
        with pytest.raises(AllProvidersFailed) as raised:
            llm.complete(MESSAGE)
        assert raised.value.attempts == []
        assert raised.value.skipped == dict.fromkeys(PROVIDERS, "cooling_down")
    assert emulator.wait_for_calls(6)
    assert {p: (customer_calls(emulator, p), probe_calls(emulator, p)) for p in PROVIDERS} == dict.fromkeys(
        PROVIDERS, (1, 1)
    )

    held.released.set()
    for provider in PROVIDERS:
        wait_until(lambda p=provider: llm.health.get(p).state == ProviderState.HEALTHY, what=f"{provider} probed")
    assert llm.complete(MESSAGE).provider == "claude"


def test_processes_that_notice_together_send_one_probe(make_llm, emulator, clock: FakeClock) -> None:
    worker_a: LLMService = make_llm(clock=clock)
    worker_b = LLMService(worker_a.setup, worker_a.store, clock)  # another process on the same database
    emulator.set_fault("claude", "server_error", times=2)
    assert worker_a.complete(MESSAGE).provider == "gemini"  # 5xx, quick retry 5xx: cooling down
    held = HeldReply()
    emulator.set_responder("claude", held)
    clock.advance(worker_a.setup.reliability.cooldown_base_s + 1)

    for _ in range(3):
        assert worker_a.complete(MESSAGE).provider == "gemini"
        assert worker_b.complete(MESSAGE).provider == "gemini"
    assert emulator.wait_for_calls(3, "claude")
    assert (customer_calls(emulator, "claude"), probe_calls(emulator, "claude")) == (2, 1)

    held.released.set()
    wait_until(lambda: worker_b.health.get("claude").state == ProviderState.HEALTHY, what="the passing probe")
    assert worker_a.complete(MESSAGE).provider == worker_b.complete(MESSAGE).provider == "claude"
    assert probe_calls(emulator, "claude") == 1


def test_with_no_traffic_the_scheduler_probes_a_provider_once_its_cooldown_is_over(
    make_llm, emulator, clock: FakeClock
) -> None:
    llm: LLMService = make_llm(clock=clock, cooldown_base_s=60)
    emulator.set_fault("claude", "server_error", times=2)
    llm.complete(MESSAGE)
    emulator.set_fault("openai", "credit_exhausted", times=1)
    llm.probe("openai")
    assert (llm.health.get("claude").state, llm.health.get("openai").state) == ("cooling_down", "benched")

    assert run_cooldown_probes(llm, clock) == []  # still cooling: nothing to do
    clock.advance(61)
    calls = {p: emulator.call_count(p) for p in PROVIDERS}

    results = run_cooldown_probes(llm, clock)

    assert [(r.provider, r.why, r.outcome, r.state_after) for r in results] == [
        ("claude", "cooldown_over", "success", "healthy")
    ]
    assert {p: emulator.call_count(p) - calls[p] for p in PROVIDERS} == {"claude": 1, "gemini": 0, "openai": 0}
    assert llm.health.get("openai").state == ProviderState.BENCHED, "benched ones wait for the self-test"
    assert llm.complete(MESSAGE).provider == "claude"
    actors = [r["actor"] for r in llm.store.db.query("select actor from provider_events where provider = 'claude'")]
    assert actors[-1] == "probe:scheduled"


def test_the_scheduler_leaves_a_provider_another_process_is_probing(make_llm, emulator, clock: FakeClock) -> None:
    llm: LLMService = make_llm(clock=clock, cooldown_base_s=60)
    emulator.set_fault("claude", "server_error", times=2)
    llm.complete(MESSAGE)
    held = HeldReply()
    emulator.set_responder("claude", held)
    clock.advance(61)
    assert llm.complete(MESSAGE).provider == "gemini"  # noticed: the background probe holds the lease
    assert emulator.wait_for_calls(3, "claude")

    assert run_cooldown_probes(llm, clock) == []
    assert "claude" not in [r.provider for r in run_scheduled_selftest(llm, AdminSettings(), clock)]
    assert probe_calls(emulator, "claude") == 1

    held.released.set()
    wait_until(lambda: llm.health.get("claude").state == ProviderState.HEALTHY, what="the passing probe")
