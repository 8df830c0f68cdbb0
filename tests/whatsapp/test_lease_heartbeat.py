"""A lease renewed by a heartbeat while its message is worked on: a slow model call keeps it, a takeover
stops the old holder from writing, and the heartbeat ends with the claim. Leases are on the fake clock;
heartbeats beat in real time, so each step waits for an observed renewal, never for a fixed time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from bot.inbound import InboundMessage, InboundQueue
from bot.sandbox.emulator import EmulatedRequest
from bot.sandbox.scripted_model import djobea_model_reply
from tests.support import CUSTOMER, Harness, wait_until

LEASE_S = 15  # fake seconds
HEARTBEAT_S = 0.05  # real seconds


@pytest.fixture
def held_model(harness: Harness) -> Iterator[Callable[[], None]]:
    """Claude answers only once the test calls the returned ``release`` (a model call as slow as a test needs)."""
    release = threading.Event()

    def answer_when_released(request: EmulatedRequest) -> str:
        release.wait(10)  # under the 12 s attempt timeout: a test that fails still lets the worker finish
        return djobea_model_reply(request)

    harness.emulator.set_responder("claude", answer_when_released)
    yield release.set
    release.set()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(INBOUND_LEASE_S=str(LEASE_S), INBOUND_HEARTBEAT_S=str(HEARTBEAT_S))


def lease(harness: Harness) -> dict:
    db = harness.runtime.store.db
    [row] = db.query("select lease_token, lease_until, attempts, status from inbound_messages")
    return row


def heartbeats() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lease-heartbeat-")]


def in_background(harness: Harness) -> threading.Thread:
    """The worker takes the message in a thread of its own (as a pool thread would) and blocks in the model."""
    thread = threading.Thread(target=harness.runtime.worker.process_once, kwargs={"owner": "slow"}, daemon=True)
    thread.start()
    assert harness.emulator.wait_for_calls(1, "claude", timeout=10), "the worker never called the model"
    return thread


def test_a_slow_model_call_keeps_its_lease_so_no_second_worker_takes_the_message(
    make_harness: Callable[..., Harness], harness: Harness, held_model: Callable[[], None]
) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau sous l'évier")
    slow = in_background(harness)
    first = lease(harness)
    second = make_harness(INBOUND_LEASE_S=str(LEASE_S))  # another process on the same database and clock

    for _ in range(3):  # 30 fake seconds in all, twice the lease, each step shorter than the lease
        harness.clock.advance(LEASE_S - 5)
        wait_until(
            lambda: lease(harness)["lease_until"] >= harness.clock() + LEASE_S,
            timeout=5,
            what="the heartbeat renewing the lease",
        )
    assert harness.clock() > first["lease_until"]  # the lease as claimed would have run out by now
    assert second.runtime.worker.process_once(owner="second") is False

    held_model()
    slow.join(timeout=15)

    assert not slow.is_alive()
    assert harness.inbound_statuses() == ["done"]
    assert len(harness.sent()) == 1 and "quartier" in harness.sent()[0]
    assert harness.emulator.call_count() == 1  # the model was asked once
    attempts = harness.runtime.store.db.execute("select attempts from inbound_messages").fetchone()[0]
    assert attempts == 1


def test_a_holder_whose_lease_was_taken_over_writes_nothing_more(
    harness: Harness, held_model: Callable[[], None]
) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau sous l'évier")
    slow = in_background(harness)
    queue = InboundQueue(harness.runtime.store, harness.clock)

    def take_over():
        harness.clock.advance(LEASE_S + 1)  # as if the holder's heartbeat had stalled for a whole lease
        return queue.claim("taker", LEASE_S)  # None when a beat renewed it in between: try again

    taker = wait_until(take_over, timeout=5, what="a takeover between two beats")
    wait_until(lambda: not heartbeats(), timeout=5, what="the old holder's heartbeat noticing the takeover")
    assert slow.is_alive()  # still inside the model call

    held_model()
    slow.join(timeout=15)

    row = lease(harness)
    assert (row["lease_token"], row["status"], row["attempts"]) == (taker.lease_token, "pending", 2)
    assert row["lease_until"] == harness.clock() + LEASE_S  # the taker's lease, not renewed by the old heartbeat
    db = harness.runtime.store.db
    assert db.execute("select count(*) from outbound_messages").fetchone()[0] == 0
    assert harness.sent() == []
    queue.complete(taker)  # the taker still holds the message


def test_the_heartbeat_ends_with_the_claim(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau sous l'évier")
    assert harness.drain() == 1  # answered: done
    for provider in ("claude", "gemini", "openai"):
        harness.emulator.set_fault(provider, "server_error")
    harness.whatsapp("Toujours là ?", customer="+237677000002")
    assert harness.drain() == 1  # no provider: a holding reply, deferred

    assert harness.inbound_statuses() == ["done", "pending"]
    assert heartbeats() == []
    leases = harness.runtime.store.db.execute("select lease_token from inbound_messages").fetchall()
    assert leases == [(None,), (None,)]


def test_an_idle_worker_takes_over_an_expired_lease_within_its_poll(make_harness: Callable[..., Harness]) -> None:
    dead = make_harness(INBOUND_LEASE_S=str(LEASE_S))
    queue = InboundQueue(dead.runtime.store, dead.clock)
    queue.enqueue(
        InboundMessage(
            message_sid="SM" + "5" * 32,
            customer_id=CUSTOMER,
            body="Bonjour, j'ai une fuite d'eau",
            from_number=f"whatsapp:{CUSTOMER}",
        )
    )
    assert queue.claim("dead-worker", LEASE_S) is not None  # its process died holding the message
    # Polls, nobody wakes it; the takeover is what is counted here, not a holding reply for the wait.
    idle = make_harness(INBOUND_LEASE_S=str(LEASE_S), WHATSAPP_WORKER_THREADS="1", HOLDING_REPLY_AFTER_S="0")

    dead.clock.advance(LEASE_S + 1)

    wait_until(lambda: idle.inbound_statuses() == ["done"], timeout=5, what="the idle pool taking the message over")
    assert len(idle.sent()) == 1
