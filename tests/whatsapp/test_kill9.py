"""A worker process killed with SIGKILL in the middle of a message, then a new one started: exactly one
reply reaches Twilio. Real subprocesses, the session emulator for providers and Twilio, SQLite shared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.inbound import InboundMessage, InboundQueue
from bot.sandbox import ProviderEmulator
from bot.sandbox.scripted_model import djobea_model_reply
from bot.store import Store
from tests.whatsapp.conftest import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER, twilio_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 2  # short, so the restarted worker takes over quickly


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
        "TWILIO_TIMEOUT_S": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_worker(worker_env: dict[str, str]) -> Iterator:
    processes: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--threads", "1"],
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def enqueue(database: str) -> Store:
    store = Store(database)
    InboundQueue(store).enqueue(
        InboundMessage(
            message_sid="SM" + "7" * 32,
            customer_id=CUSTOMER,
            body="Bonjour, j'ai une fuite d'eau sous l'évier",
            from_number=f"whatsapp:{CUSTOMER}",
        )
    )
    return store


def done(store: Store) -> bool:
    return store.db.execute("select status from inbound_messages").fetchone()[0] == "done"


@pytest.mark.slow
def test_worker_killed_during_the_model_call_answers_once_after_restart(
    emulator: ProviderEmulator, worker_env: dict[str, str], start_worker
) -> None:
    store = enqueue(worker_env["DATABASE_PATH"])
    emulator.set_latency("claude", 20)  # holds the first worker inside the provider call

    first = start_worker()
    assert emulator.wait_for_calls(1, "claude", timeout=30), "the first worker never called the provider"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    emulator.set_latency("claude", 0)
    assert emulator.twilio.messages() == []

    start_worker()
    wait_until(lambda: done(store), timeout=40)

    [sent] = emulator.twilio.messages()
    assert "quartier" in sent["body"]
    assert store.db.execute("select count(*) from outbound_messages").fetchone()[0] == 1


@pytest.mark.slow
def test_worker_killed_after_twilio_took_the_reply_does_not_send_it_again(
    emulator: ProviderEmulator, worker_env: dict[str, str], start_worker
) -> None:
    store = enqueue(worker_env["DATABASE_PATH"])
    emulator.twilio.set_latency(20)  # Twilio records the message, then is slow to answer

    first = start_worker()
    assert emulator.twilio.wait_for_messages(1, timeout=30), "the first worker never reached Twilio"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    emulator.twilio.set_latency(0)

    start_worker()
    wait_until(lambda: done(store), timeout=40)

    [sent] = emulator.twilio.messages()  # still exactly one
    sid = store.db.execute("select twilio_sid from outbound_messages").fetchone()[0]
    assert sid == sent["sid"]
