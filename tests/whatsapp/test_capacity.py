"""Capacity: idle workers wait for what they can take, and learn of new work in any process at once."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from bot.inbound import InboundMessage, InboundQueue
from bot.inbound.wakeup import WakeChannel
from tests.support import CUSTOMER, FakeClock


def message(sid: str, customer: str = CUSTOMER) -> InboundMessage:
    return InboundMessage(message_sid=sid, customer_id=customer, body="Bonjour", from_number=f"whatsapp:{customer}")


def test_a_message_waiting_behind_a_held_one_is_not_due(store) -> None:
    clock = FakeClock()
    queue = InboundQueue(store, clock)
    queue.enqueue(message("SM1"))
    queue.enqueue(message("SM2"))  # the same customer's second message: claimable only after SM1
    held = queue.claim("w1", 60)
    assert held is not None and held.message.message_sid == "SM1"

    # Idle workers sleep until SM1's lease could run out, instead of polling for SM2 all along.
    assert queue.next_due_at() == clock() + 60
    queue.complete(held)
    assert queue.next_due_at() == 0.0


def test_other_customers_messages_stay_due(store) -> None:
    clock = FakeClock()
    queue = InboundQueue(store, clock)
    queue.enqueue(message("SM1"))
    queue.enqueue(message("SM2"))
    queue.enqueue(message("SM3", "+237677000002"))
    assert queue.claim("w1", 60) is not None

    assert queue.next_due_at() == 0.0  # SM3 is claimable now


def test_a_hint_reaches_the_other_process_socket(tmp_path: Path) -> None:
    woken = threading.Event()
    webhook, workers = WakeChannel(tmp_path / "bot.db.wake", "web-1"), WakeChannel(tmp_path / "bot.db.wake", "web-2")
    assert workers.listen(woken.set)
    assert webhook.listen(lambda: None)
    try:
        assert webhook.notify() == 1  # not its own socket
        assert woken.wait(5)
    finally:
        webhook.close()
        workers.close()
    assert list((tmp_path / "bot.db.wake").iterdir()) == []


def test_the_socket_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "bot.db.wake"
    directory.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(directory / "4242.sock"))
    dead.close()  # as after kill -9: the file stays, nobody reads it

    assert WakeChannel(directory, "web-1").notify() == 0
    assert not (directory / "4242.sock").exists()


def test_without_a_usable_directory_workers_fall_back_to_polling(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    channel = WakeChannel(tmp_path / "file" / "wake", "web-1")
    assert channel.listen(lambda: None) is False
    assert channel.notify() == 0


def test_a_provider_at_its_parallel_cap_is_skipped_as_busy(make_llm, emulator) -> None:
    llm = make_llm(max_parallel_requests=1)
    emulator.set_latency("claude", 1.5)
    first: list[str] = []
    holder = threading.Thread(target=lambda: first.append(llm.complete([{"role": "user", "content": "a"}]).provider))
    holder.start()
    assert emulator.wait_for_calls(1, "claude")  # claude's one slot is taken

    second = llm.complete([{"role": "user", "content": "b"}], deadline_s=1.0)
    holder.join()

    assert (first, second.provider) == (["claude"], "gemini")
    assert emulator.call_count("claude") == 1
