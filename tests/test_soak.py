"""Soak test (issue 8, item 7): the Procfile's processes under steady load through failures, seen from outside.

Every line of the ``Procfile`` runs as it is (``bash -c "exec LINE"``, its bind address forced to 127.0.0.1) on a
fresh database, against the session emulator (providers and Twilio, real HTTP on 127.0.0.1). Load threads post
Twilio-signed WhatsApp messages at a steady rate for the whole run, most from distinct customers and a few from
customers who write two or three messages in a row. Meanwhile, in this order (seconds after the load starts):

    LOAD_S ─────────────────────────────────────────────────────────────────────────────────────────────────>
    CLAUDE_CREDIT_AT   Claude out of credit (it stays so)
    ALL_FAIL_AT        every provider fails (5xx; Claude still out of credit) for ALL_FAIL_S, then recovers
    KILL_WEB_AT        one gunicorn worker SIGKILLed (its master starts another)
    KILL_WORKER_AT     the ``worker`` process (answers and scheduler: the former clock) SIGKILLed, started again

Then the load stops and the test polls, with a deadline, until every inbound message is settled. It checks
what Twilio accepted and what the database holds: every webhook acked with 200 (a connection the killed gunicorn
worker dropped is posted again, the same signed form, as Twilio would); every message ``done``; for each message
exactly one answer from a model, at most one holding reply and only before it, nothing else sent and nothing
sent twice; no outbound row left pending or in flight; each customer's answers in the order of their messages.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bot.conversation.fixed_replies import HOLDING_REPLY, NOT_PROCESSED_REPLY
from bot.sandbox import ProviderEmulator
from bot.sandbox.scripted_model import djobea_model_reply
from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BOT_NUMBER,
    PROVIDERS,
    provider_env_for,
    sign,
    twilio_env,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "Procfile"

RATE = 6.0  # messages per second, steady, for the whole run
LOAD_S = 32.0
CLAUDE_CREDIT_AT = 3.0
ALL_FAIL_AT, ALL_FAIL_S = 5.0, 10.0
KILL_WEB_AT = 16.0
KILL_WORKER_AT = 20.0
LATENCY_S = {"claude": 0.1, "gemini": 0.2, "openai": 0.3}
SENDERS = 6  # load threads; a customer's messages always go from the same one, each after the last was acked
SETTLE_S = 45.0  # generous: a message held through the outage may wait out a 20 s backoff and a 15 s lease
WEBHOOK_GIVE_UP_S = 30.0  # Twilio keeps redelivering for longer; a webhook still failing after this fails the test

# A few customers write several messages in a row; the rest write one. None of them confirms a request.
SERIES = (
    "Bonjour",
    "J'ai une fuite d'eau sous l'évier",
    "C'est à Akwa, près de la pharmacie",
)
SINGLE = (
    "Bonjour, j'ai une fuite d'eau sous l'évier",
    "Hello, my power is out",
    "Light don go for my house",
    "Mon frigo ne marche plus",
)


# --- the Procfile's processes -----------------------------------------------------------------------------


def procfile_lines() -> dict[str, str]:
    """Process name -> command, as a Procfile runner reads them."""
    found = re.findall(r"^(\w+):\s*(.+)$", PROCFILE.read_text(encoding="utf-8"), re.MULTILINE)
    return {name: command.strip() for name, command in found}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


class Procs:
    """The Procfile's lines, each started as a supervisor would (its own session, output to one log)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.lines = procfile_lines()
        assert {"web", "worker"} <= set(self.lines), f"the Procfile's processes changed: {sorted(self.lines)}"
        self.log_path = log
        self.log = open(log, "ab")  # noqa: SIM115 - lives as long as the processes
        self.processes: dict[str, subprocess.Popen] = {}
        self.url = f"http://127.0.0.1:{env['PORT']}"
        for name in self.lines:
            self.start(name)

    def start(self, name: str) -> subprocess.Popen:
        command = self.lines[name].replace("0.0.0.0", "127.0.0.1")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log,
            start_new_session=True,
        )  # fmt: skip
        return self.processes[name]

    def kill(self, name: str) -> int:
        """SIGKILL the process ``name`` (``exec`` made it the Popen's own pid); returns that pid."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return process.pid

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def worker_runs(self) -> int:
        """How many times a ``worker`` process said it was running (one per start)."""
        return self.log_text().count("worker running")

    def web_ready(self) -> bool:
        try:
            return httpx.get(self.url + "/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.log.close()


# --- the load ---------------------------------------------------------------------------------------------


@dataclass
class Message:
    customer: str
    body: str
    sid: str
    due: float  # seconds after the load starts
    posted_at: float | None = None  # epoch seconds of the first POST
    statuses: list[int] = field(default_factory=list)  # every HTTP answer, in order
    dropped: list[str] = field(default_factory=list)  # connections that failed (then posted again)


def plan(rate: float, seconds: float) -> list[Message]:
    """One message every 1/rate s; every eighth customer writes the three messages of ``SERIES`` 0.4 s apart."""
    messages: list[Message] = []
    customer = 0
    slot = 0
    while slot / rate < seconds:
        number = f"+23765{customer:07d}"  # a fresh database and Twilio record: no earlier conversation
        if customer % 8 == 3:
            messages += [Message(number, body, f"SM{uuid.uuid4().hex}", slot / rate + 0.4 * k) for k, body in
                         enumerate(SERIES)]  # fmt: skip
            slot += len(SERIES)
        else:
            messages.append(Message(number, SINGLE[customer % len(SINGLE)], f"SM{uuid.uuid4().hex}", slot / rate))
            slot += 1
        customer += 1
    return messages


class Load:
    """Senders posting the planned messages on time; a dropped connection or a 5xx is posted again (same form)."""

    def __init__(self, url: str, messages: list[Message]) -> None:
        self.webhook = url + "/webhook/whatsapp"
        self.messages = messages
        self.started_at = 0.0
        self.errors: list[str] = []
        customers = list(dict.fromkeys(m.customer for m in messages))
        lane = {customer: index % SENDERS for index, customer in enumerate(customers)}
        self.lanes = [[m for m in messages if lane[m.customer] == k] for k in range(SENDERS)]
        self.threads = [threading.Thread(target=self._send, args=(lane,), daemon=True) for lane in self.lanes]

    def start(self) -> float:
        self.started_at = time.time() + 0.5
        for thread in self.threads:
            thread.start()
        return self.started_at

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=LOAD_S + WEBHOOK_GIVE_UP_S + 10)
        assert not any(t.is_alive() for t in self.threads), "a load thread never finished"

    def _send(self, lane: list[Message]) -> None:
        with httpx.Client(timeout=15) as client:
            for message in lane:
                delay = self.started_at + message.due - time.time()
                if delay > 0:
                    time.sleep(delay)  # pacing the load, not waiting for work
                try:
                    self._post(client, message)
                except Exception as exc:  # noqa: BLE001 - recorded and asserted on by the test
                    self.errors.append(f"{message.sid}: {type(exc).__name__}: {exc}")

    def _post(self, client: httpx.Client, message: Message) -> None:
        form = {
            "MessageSid": message.sid,
            "SmsMessageSid": message.sid,
            "AccountSid": ACCOUNT_SID,
            "From": f"whatsapp:{message.customer}",
            "To": f"whatsapp:{BOT_NUMBER}",
            "Body": message.body,
            "NumMedia": "0",
            "ProfileName": "Client",
            "WaId": message.customer.lstrip("+"),
        }
        headers = {"X-Twilio-Signature": sign(self.webhook, form)}
        message.posted_at = time.time()
        deadline = time.monotonic() + WEBHOOK_GIVE_UP_S
        while True:
            try:
                response = client.post(self.webhook, data=form, headers=headers)
                message.statuses.append(response.status_code)
                if response.status_code == 200:
                    return
            except httpx.TransportError as exc:  # e.g. the gunicorn worker holding the connection was killed
                message.dropped.append(type(exc).__name__)
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook never acked: statuses {message.statuses}, dropped {message.dropped}")
            time.sleep(0.2)  # Twilio waits before redelivering too


# --- the run ----------------------------------------------------------------------------------------------


@pytest.fixture
def procs(emulator: ProviderEmulator, tmp_path: Path) -> Iterator[Procs]:
    emulator.set_responder(None, djobea_model_reply)
    emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    for provider, seconds in LATENCY_S.items():
        emulator.set_latency(provider, seconds)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "WHATSAPP_WORKER_THREADS"}
    env.update(provider_env_for(emulator))
    env.update({k: v for k, v in twilio_env(emulator).items() if k != "WHATSAPP_WORKER_THREADS"})
    env.update(
        DATABASE_PATH=str(tmp_path / "soak.db"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        PORT=str(free_port()),
        LOG_LEVEL="warning",
    )
    procs = Procs(env, tmp_path / "procs.log")
    try:
        wait_until(procs.web_ready, 60, interval=0.1, what="gunicorn serving GET /")
        wait_until(lambda: procs.worker_runs() >= 1, 60, interval=0.1, what="the worker process running")
        yield procs
    finally:
        procs.stop()


def twilio_kinds_by_inbound(database: Path, accepted: list[dict]) -> tuple[dict, list[str], dict]:
    """Each inbound message's sends in Twilio's acceptance order as (kind, row); Twilio messages no outbound row
    holds; and every outbound row by id."""
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in db.execute("select * from outbound_messages")}
    by_sid = {r["twilio_sid"]: r for r in rows.values() if r["twilio_sid"]}
    sends: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    unknown: list[str] = []
    for message in accepted:
        row = by_sid.get(message["sid"])
        if row is None or row["body"] != message["body"] or row["to_number"] != message["to"]:
            unknown.append(f"{message['to']}: {message['body'][:60]!r}")
            continue
        sends[row["inbound_id"]].append((row["kind"], row))
    return sends, unknown, rows


def unsettled(database: Path) -> list[tuple]:
    with sqlite3.connect(database, timeout=30) as db:
        return db.execute(
            "select id, customer_id, status, attempts, next_attempt_at, lease_until, last_error from inbound_messages"
            " where status = 'pending'"
        ).fetchall()


def stuck_report(database: Path, procs: Procs) -> str:
    """What a failed settle leaves to read: the pending messages, each provider's state, the processes' log."""
    stuck = unsettled(database)
    with sqlite3.connect(database, timeout=30) as db:
        health = db.execute("select provider, state, cooldown_level, until - since, reason from provider_health")
        health = health.fetchall()
    log = [line for line in procs.log_text().splitlines() if "gunicorn.access" not in line]
    return (
        f"{len(stuck)} message(s) still pending {SETTLE_S:g} s after the load, e.g. {stuck[:3]}\n"
        f"provider health (provider, state, cooldown level, cooldown s, reason): {health}\n"
        "processes' log (access lines left out):\n  " + "\n  ".join(log[-30:])
    )


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_procfile_under_load_through_credit_outage_and_sigkills_answers_every_message_once(
    emulator: ProviderEmulator, procs: Procs, tmp_path: Path
) -> None:
    database = Path(procs.env["DATABASE_PATH"])
    messages = plan(RATE, LOAD_S)
    load = Load(procs.url, messages)
    began = time.monotonic()
    t0 = load.start()
    events: list[str] = []

    def at(offset: float, what: str) -> None:
        delay = t0 + offset - time.time()
        if delay > 0:
            time.sleep(delay)  # the scenario's clock, not a wait for work
        events.append(f"{time.time() - t0:5.1f} s  {what}")

    at(CLAUDE_CREDIT_AT, "claude out of credit")
    emulator.set_fault("claude", "credit_exhausted")
    at(ALL_FAIL_AT, "gemini and openai failing (server_error)")
    for provider in ("gemini", "openai"):
        emulator.set_fault(provider, "server_error")
    at(ALL_FAIL_AT + ALL_FAIL_S, "gemini and openai recovered")
    for provider in ("gemini", "openai"):
        emulator.clear_fault(provider)

    at(KILL_WEB_AT, "SIGKILL one gunicorn worker")
    master = procs.processes["web"].pid
    before = children(master)
    assert before, "gunicorn has no worker to kill"
    os.kill(before[0], signal.SIGKILL)
    wait_until(lambda: before[0] not in children(master) and len(children(master)) == len(before), 30,
               interval=0.05, what="gunicorn's master replacing the killed worker")  # fmt: skip
    events.append(f"{time.time() - t0:5.1f} s  gunicorn worker replaced")

    at(KILL_WORKER_AT, "SIGKILL the worker process (answers + scheduler), started again")
    procs.kill("worker")
    procs.start("worker")
    wait_until(lambda: procs.worker_runs() >= 2, 60, interval=0.1, what="the restarted worker process running")
    events.append(f"{time.time() - t0:5.1f} s  worker process running again")

    load.join()
    events.append(f"{time.time() - t0:5.1f} s  load over: {len(messages)} messages posted")
    try:
        wait_until(lambda: not unsettled(database), SETTLE_S, interval=0.25, what="every inbound message settled")
    except AssertionError:
        pytest.fail(stuck_report(database, procs), pytrace=False)
    events.append(f"{time.time() - t0:5.1f} s  every message settled")

    # --- the webhooks -------------------------------------------------------------------------------------
    assert not load.errors, load.errors[:5]
    not_ok = [(m.sid, m.statuses) for m in messages if any(s != 200 for s in m.statuses)]
    assert not not_ok, f"webhook answers other than 200: {not_ok[:5]}"
    redelivered = [m for m in messages if m.dropped]

    # --- the database -------------------------------------------------------------------------------------
    with sqlite3.connect(database) as db:
        inbound = {sid: (id_, status) for id_, sid, status in db.execute(
            "select id, message_sid, status from inbound_messages")}  # fmt: skip
        left = db.execute("select id, kind, status from outbound_messages where status in ('pending', 'in_flight')")
        left = left.fetchall()
    assert set(inbound) == {m.sid for m in messages}, "stored messages differ from those posted (lost or extra)"
    not_done = {sid: status for sid, (_, status) in inbound.items() if status != "done"}
    assert not not_done, f"messages not done: {list(not_done.items())[:5]}"
    assert not left, f"outbound rows left unsettled: {left[:5]}"

    # --- what Twilio accepted -----------------------------------------------------------------------------
    accepted = emulator.twilio.messages()
    accepted_at = emulator.twilio.accepted_at()
    sends, unknown, rows = twilio_kinds_by_inbound(database, accepted)
    assert not unknown, f"Twilio took messages no outbound row holds (sent twice?): {unknown[:5]}"
    fixed_texts = set(HOLDING_REPLY.values()) | set(NOT_PROCESSED_REPLY.values())
    wrong: list[str] = []
    answered_at: dict[str, float] = {}
    holding = 0
    for message in messages:
        inbound_id = inbound[message.sid][0]
        sent = sends.get(inbound_id, [])
        kinds = [kind for kind, _ in sent]
        replies = [row for kind, row in sent if kind == "reply"]
        parts = {row["parts"] for row in replies}
        if kinds.count("holding") > 1 or set(kinds) - {"holding", "reply"} or "holding" in kinds[1:]:
            wrong.append(f"{message.sid} ({message.customer}): sent {kinds}")
        elif not replies or len(parts) != 1 or sorted(r["part"] for r in replies) != list(range(1, parts.pop() + 1)):
            wrong.append(f"{message.sid} ({message.customer}): answer parts {[r['part'] for r in replies]}")
        elif any(not r["provider"] or r["body"] in fixed_texts for r in replies):
            wrong.append(f"{message.sid} ({message.customer}): not a model's answer: {replies[0]['body'][:60]!r}")
        else:
            answered_at[message.sid] = min(accepted_at[r["twilio_sid"]] for r in replies)
            holding += kinds.count("holding")
    assert not wrong, f"{len(wrong)} message(s) not answered exactly once:\n  " + "\n  ".join(wrong[:10])

    # Per customer: answers in the order the messages were posted (and acked).
    by_customer: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        by_customer[message.customer].append(message)
    out_of_order = [
        customer
        for customer, own in by_customer.items()
        if [answered_at[m.sid] for m in own] != sorted(answered_at[m.sid] for m in own)
    ]
    assert not out_of_order, f"answers out of order for {out_of_order[:5]}"

    # --- summary (quoted in README) -----------------------------------------------------------------------
    latency = [answered_at[m.sid] - m.posted_at for m in messages]
    providers = defaultdict(int)
    for row in rows.values():
        if row["kind"] == "reply" and row["part"] == 1:
            providers[row["provider"]] += 1
    print(f"\nsoak: {len(messages)} messages from {len(by_customer)} customers at {RATE:g}/s for {LOAD_S:g} s, "
          f"providers {', '.join(f'{p} {LATENCY_S[p] * 1000:.0f} ms' for p in PROVIDERS)}")  # fmt: skip
    for line in events:
        print(f"  {line}")
    print(f"  answered {len(answered_at)}/{len(messages)} exactly once ({dict(providers)}); holding replies "
          f"{holding}; Twilio messages {len(accepted)}; webhooks posted again after a dropped connection "
          f"{len(redelivered)}")  # fmt: skip
    print(f"  webhook -> answer accepted by Twilio: p50 {percentile(latency, 50):.2f} s, p99 "
          f"{percentile(latency, 99):.2f} s, max {max(latency):.2f} s; wall time {time.monotonic() - began:.1f} s "
          "from the first message")  # fmt: skip
