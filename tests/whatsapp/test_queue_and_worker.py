"""The durable queue and the worker: leases, per-customer order, fencing, resumption, the 24-hour window."""

from __future__ import annotations

import threading

from bot.inbound import InboundMessage, InboundQueue, LeaseLost, release_expired_leases
from tests.support import BOT_NUMBER, CUSTOMER, FakeClock, Harness, wait_until


def message(sid: str, customer: str = CUSTOMER, body: str = "Bonjour") -> InboundMessage:
    return InboundMessage(message_sid=sid, customer_id=customer, body=body, from_number=f"whatsapp:{customer}")


def test_webhook_to_reply_through_emulated_twilio(make_harness) -> None:
    harness = make_harness()
    harness.whatsapp("Bonjour, j'ai une fuite d'eau sous l'évier")

    assert harness.drain() == 1

    [sent] = harness.emulator.twilio.messages()
    assert sent["to"] == f"whatsapp:{CUSTOMER}" and sent["from"] == f"whatsapp:{BOT_NUMBER}"
    assert "quartier" in sent["body"]
    [row] = list(harness.runtime.store.db.query("select * from outbound_messages"))
    assert (row["status"], row["twilio_sid"], row["provider"]) == ("queued", sent["sid"], "claude")
    assert harness.inbound_statuses() == ["done"]


def test_status_callbacks_reach_the_app_and_are_recorded(make_harness, live_server) -> None:
    harness = make_harness(PUBLIC_BASE_URL=live_server.url)
    live_server.app = harness.app
    harness.emulator.twilio.set_callbacks(True)
    harness.whatsapp("Bonjour, j'ai une fuite d'eau", signed_url=live_server.url + "/webhook/whatsapp")
    harness.drain()

    # The emulator posts signed 'sent' then 'delivered' to PUBLIC_BASE_URL/webhook/twilio/status?outbound=<id>.
    db = harness.runtime.store.db
    wait_until(lambda: db.execute("select status from outbound_messages").fetchone()[0] == "delivered")
    assert [r[0] for r in db.execute("select status from message_status_events order by id")] == ["sent", "delivered"]


def test_messages_of_one_customer_are_taken_in_order(store) -> None:
    queue = InboundQueue(store)
    for sid, customer in (("SM1", CUSTOMER), ("SM2", CUSTOMER), ("SM3", "+237677000002")):
        queue.enqueue(message(sid, customer))

    first = queue.claim("w1", 60)
    other = queue.claim("w2", 60)
    nothing = queue.claim("w3", 60)  # SM2 waits for SM1 of the same customer
    assert first is not None and other is not None
    queue.complete(first)
    second = queue.claim("w3", 60)

    assert (first.message.message_sid, other.message.message_sid) == ("SM1", "SM3")
    assert nothing is None
    assert second is not None and second.message.message_sid == "SM2"


def test_two_workers_never_take_the_same_message(store) -> None:
    queue = InboundQueue(store)
    for index in range(40):
        queue.enqueue(message(f"SM{index}", customer=f"+2376990{index:05d}"))
    taken: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        while (claim := queue.claim(threading.current_thread().name, 60)) is not None:
            with lock:
                taken.append(claim.id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(taken) == sorted(set(taken)) and len(taken) == 40


def test_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(store) -> None:
    clock = FakeClock()
    queue = InboundQueue(store, clock)
    queue.enqueue(message("SM1"))
    stalled = queue.claim("w1", lease_s=30)
    assert stalled is not None and queue.claim("w2", 30) is None

    clock.advance(31)
    taker = queue.claim("w2", 30)

    assert taker is not None and taker.id == stalled.id and taker.attempts == 2
    try:
        queue.complete(stalled)
        raise AssertionError("the stalled worker must not complete a message it lost")
    except LeaseLost:
        pass
    queue.complete(taker)
    assert queue.counts() == {"done": 1}


def test_release_expired_leases_for_the_scheduler(store) -> None:
    clock = FakeClock()
    queue = InboundQueue(store, clock)
    queue.enqueue(message("SM1"))
    queue.enqueue(message("SM2", customer="+237677000002"))
    queue.claim("dead-worker", lease_s=30)
    queue.claim("live-worker", lease_s=300)

    clock.advance(60)
    released = release_expired_leases(store, now=clock())

    assert released == 1
    owners = [r[0] for r in store.db.execute("select lease_owner from inbound_messages order by id")]
    assert owners == [None, "live-worker"]


def test_restart_resumes_pending_messages_without_asking_the_model_again(make_harness) -> None:
    harness = make_harness()
    harness.emulator.twilio.set_fault("server_error")  # Twilio down: the reply is recorded, not sent
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()
    calls_before = harness.emulator.call_count()
    assert harness.sent() == [] and harness.inbound_statuses() == ["pending"]

    restarted = make_harness()  # a new process on the same database
    restarted.emulator.twilio.set_fault(None)
    restarted.clock.advance(600)
    restarted.drain()

    assert len(restarted.sent()) == 1
    assert restarted.emulator.call_count() == calls_before  # the recorded reply was sent, not rewritten
    assert restarted.inbound_statuses() == ["done"]


def test_message_whose_24_hour_window_closed_is_expired_not_sent(harness: Harness) -> None:
    harness.emulator.set_fault("claude", "server_error")
    harness.emulator.set_fault("gemini", "server_error")
    harness.emulator.set_fault("openai", "server_error")
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()  # holding reply, message pending
    for provider in ("claude", "gemini", "openai"):
        harness.emulator.clear_fault(provider)

    harness.clock.advance(24 * 3600 + 1)
    harness.drain()

    assert len(harness.sent()) == 1  # the holding reply only
    [row] = list(harness.runtime.store.db.query("select status, last_error from inbound_messages"))
    assert row["status"] == "expired" and "24-hour" in row["last_error"]


def test_worker_threads_in_the_web_process_answer_without_being_driven(make_harness) -> None:
    harness = make_harness(WHATSAPP_WORKER_THREADS="2")
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")

    assert harness.emulator.twilio.wait_for_messages(1, timeout=15)
    wait_until(lambda: harness.inbound_statuses() == ["done"])


def test_a_claim_with_nothing_to_take_does_not_wait_for_the_write_lock(store) -> None:
    """Idle workers look without the write lock, so they never queue behind (or ahead of) a webhook storing."""
    import sqlite3

    queue = InboundQueue(store, FakeClock())
    writer = sqlite3.connect(store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a webhook (another process) is storing a message
    try:
        assert queue.claim("idle-worker", 15) is None  # at once: no wait of up to the 30 s busy timeout
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_one_idle_worker_is_woken_per_new_message() -> None:
    """Each woken worker tries a claim; waking every idle one for each message kept the write lock busy."""
    from bot.whatsapp.worker import WakeUps

    wake_ups = WakeUps(limit=4)
    woken: list[bool] = []
    waiting = threading.Barrier(4)

    def idle_worker() -> None:
        waiting.wait()
        woken.append(wake_ups.wait(1.0))

    workers = [threading.Thread(target=idle_worker) for _ in range(3)]
    for worker in workers:
        worker.start()
    waiting.wait()
    wake_ups.notify()
    for worker in workers:
        worker.join(timeout=5)

    assert sorted(woken) == [False, False, True]
