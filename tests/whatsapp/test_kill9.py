"""Worker processes killed with SIGKILL in the middle of a message: exactly one reply reaches Twilio, soon.
Real subprocesses, the session emulator for providers and Twilio, SQLite shared.

The lease is short here (``LEASE_S``) so that a takeover takes seconds; what keeps it from being taken
from a live worker whose model call outlasts it is the heartbeat renewing it (``HEARTBEAT_S``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.inbound import InboundMessage, InboundQueue
from bot.sandbox import ProviderEmulator
from bot.sandbox.scripted_model import djobea_model_reply
from bot.services import open_services
from bot.store import Store
from bot.whatsapp.runtime import WhatsAppRuntime
from tests.support import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER, twilio_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 2  # short, so a live worker takes over quickly
HEARTBEAT_S = 0.25  # a renewal may be late by most of a lease before the lease is lost
TAKEOVER_BOUND_S = 15  # what the production defaults promise: INBOUND_LEASE_S after the last heartbeat
OTHER_CUSTOMER = "+237677000002"


@dataclass
class WorkerProcess:
    """``python -m bot worker`` with its stderr collected (read continuously, so the pipe never fills)."""

    process: subprocess.Popen
    stderr: list[str] = field(default_factory=list)

    def running(self) -> bool:
        return any("worker running" in line for line in self.stderr)

    def kill(self) -> float:
        """SIGKILL; returns when it was sent (epoch seconds)."""
        self.process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        self.process.wait(timeout=10)
        return killed_at


@pytest.fixture
def worker_env(emulator: ProviderEmulator, provider_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    emulator.set_responder(None, djobea_model_reply)
    emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    return {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        **provider_env,
        **twilio_env(emulator),
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "INBOUND_LEASE_S": str(LEASE_S),
        "HOLDING_REPLY_AFTER_S": "0",  # what is counted here is the answer: no holding reply for the wait
        "INBOUND_HEARTBEAT_S": str(HEARTBEAT_S),
        "TWILIO_TIMEOUT_S": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_worker(worker_env: dict[str, str]) -> Iterator:
    workers: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--threads", "1"],
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        worker = WorkerProcess(process)
        threading.Thread(target=collect_lines, args=(process.stderr, worker.stderr), daemon=True).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
            worker.process.wait(timeout=15)


def collect_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def enqueue(database: str, sid: str = "SM" + "7" * 32, customer: str = CUSTOMER) -> Store:
    store = Store(database)
    InboundQueue(store).enqueue(
        InboundMessage(
            message_sid=sid,
            customer_id=customer,
            body="Bonjour, j'ai une fuite d'eau sous l'évier",
            from_number=f"whatsapp:{customer}",
        )
    )
    return store


def done(store: Store, customer: str = CUSTOMER) -> bool:
    row = store.db.execute("select status from inbound_messages where customer_id = ?", [customer]).fetchone()
    return row[0] == "done"


def attempts(store: Store, customer: str) -> int:
    return store.db.execute("select attempts from inbound_messages where customer_id = ?", [customer]).fetchone()[0]


@pytest.fixture
def live_worker(worker_env: dict[str, str]) -> Iterator[WhatsAppRuntime]:
    """Worker threads in this process, assembled as ``python -m bot worker`` assembles its own: the live
    worker beside the subprocess (a gunicorn process's threads), without paying for a second import."""
    services = open_services(worker_env)
    runtime = services.whatsapp
    yield runtime
    runtime.stop_workers()
    services.close()


@pytest.mark.slow
def test_killed_worker_is_taken_over_by_a_live_one_which_never_takes_a_slow_answer(
    emulator: ProviderEmulator, worker_env: dict[str, str], start_worker, live_worker: WhatsAppRuntime
) -> None:
    worker = start_worker()
    wait_until(worker.running, timeout=60, what="the worker process running")

    # A model call lasting longer than the lease: the live worker, idle and polling, must not take it.
    emulator.set_latency("claude", 2.5 * LEASE_S)
    store = enqueue(worker_env["DATABASE_PATH"])
    assert emulator.wait_for_calls(1, "claude", timeout=30), "the worker process never called the provider"
    live_worker.start_workers(1)
    wait_until(lambda: done(store), timeout=40, what="the slow answer")
    assert emulator.call_count() == 1 and attempts(store, CUSTOMER) == 1
    assert len(emulator.twilio.messages(f"whatsapp:{CUSTOMER}")) == 1
    live_worker.stop_workers()

    # The worker process killed in the middle of the model call: the live worker takes over once the lease runs out.
    emulator.set_latency("claude", 20)
    enqueue(worker_env["DATABASE_PATH"], sid="SM" + "8" * 32, customer=OTHER_CUSTOMER)
    assert emulator.wait_for_calls(2, "claude", timeout=30), "the worker process never called the provider"
    live_worker.start_workers(1)
    killed_at = worker.kill()
    emulator.set_latency("claude", 0)
    assert emulator.twilio.messages(f"whatsapp:{OTHER_CUSTOMER}") == []

    wait_until(lambda: done(store, OTHER_CUSTOMER), timeout=TAKEOVER_BOUND_S + 15, what="the takeover")

    [sent] = emulator.twilio.messages(f"whatsapp:{OTHER_CUSTOMER}")
    assert "quartier" in sent["body"]
    recovery_s = emulator.twilio.accepted_at()[sent["sid"]] - killed_at
    print(f"SIGKILL to reply accepted by Twilio: {recovery_s:.2f}s (lease {LEASE_S}s)")
    assert recovery_s < TAKEOVER_BOUND_S
    assert attempts(store, OTHER_CUSTOMER) == 2 and emulator.call_count() == 3
    assert store.db.execute("select count(*) from outbound_messages").fetchone()[0] == 2


@pytest.mark.slow
def test_worker_killed_after_twilio_took_the_reply_does_not_send_it_again(
    emulator: ProviderEmulator, worker_env: dict[str, str], start_worker
) -> None:
    store = enqueue(worker_env["DATABASE_PATH"])
    emulator.twilio.set_latency(20)  # Twilio records the message, then is slow to answer

    first = start_worker()
    assert emulator.twilio.wait_for_messages(1, timeout=30), "the first worker never reached Twilio"
    first.kill()
    emulator.twilio.set_latency(0)

    start_worker()
    wait_until(lambda: done(store), timeout=40)

    [sent] = emulator.twilio.messages()  # still exactly one
    sid = store.db.execute("select twilio_sid from outbound_messages").fetchone()[0]
    assert sid == sent["sid"]
