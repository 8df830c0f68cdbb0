"""Chat flood: can slow web-chat clients starve Twilio's webhook? Measured on gunicorn run as the Procfile runs it.

Everything on 127.0.0.1, in one run (about 40 s):
  - the provider emulator in its own process (``python -m bot.sandbox.emulator --port P``), every provider
    answering after --latency seconds (8 by default, set with ``POST /_emulator/latency``), and the emulated
    Twilio on the same port;
  - gunicorn started from the Procfile's ``web:`` line (2 workers x 4 threads, --timeout 60; bound to 127.0.0.1
    instead of 0.0.0.0) on a fresh database, in sandbox mode (no provider key, SANDBOX_EMULATOR_URL pointing at
    the emulator) with Twilio pointed at the emulator; every other setting at its default;
  - (1) baseline: 20 signed POST /webhook/whatsapp, one every 0.25 s, with no chat load;
  - (2) flood: 48 chat clients each posting to /webhook/chat in a loop (sending back the session token once one
    is issued; --pause s after a refusal), and after --settle s the same 20 signed webhooks; chat answers are
    counted until the webhooks are done and at least one provider latency has passed.
Prints the webhook ack p50/p99 of both phases and their ratio, how many webhooks missed Twilio's 15 s, and the
chat answers by status. A webhook that times out counts as 15000 ms.

    python benchmarks/chat_flood.py [--app-root PATH]   # PATH: another checkout to serve, e.g. a worktree of HEAD
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402
from whatsapp import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, free_port, summary  # noqa: E402  (benchmarks/ on sys.path)

TWILIO_TIMEOUT_S = 15.0  # Twilio gives up on a webhook after 15 s
WEBHOOKS = 20
WEBHOOK_INTERVAL_S = 0.25
CHAT_CLIENTS = 48
CHAT_TIMEOUT_S = 30.0


# --- the processes under test -------------------------------------------------------------------------------


def start_emulator(latency_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox.emulator", "--port", str(port)],
        cwd=ROOT,  # the test double of this checkout, whatever code is measured
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = (process.stdout.readline() if process.stdout else "").strip() or f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=5) as control:
        for provider in ("claude", "gemini", "openai"):
            control.post("/_emulator/latency", json={"provider": provider, "seconds": latency_s}).raise_for_status()
        credentials = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
        control.post("/_emulator/twilio/credentials", json=credentials).raise_for_status()
    return process, url


def procfile_command(app_root: Path, port: int) -> list[str]:
    """The Procfile's web command with its defaults, bound to loopback, run by this interpreter's gunicorn."""
    line = next(li for li in (app_root / "Procfile").read_text().splitlines() if li.startswith("web:"))
    line = line.removeprefix("web:").replace("${WEB_CONCURRENCY:-2}", "2").replace("${PORT:-8000}", str(port))
    words = shlex.split(line.replace("0.0.0.0", "127.0.0.1"))
    settings = []  # the line's own `env NAME=value` (WHATSAPP_WORKER_THREADS=0)
    if words[0] == "env":
        settings = ["env", *(w for w in words[1:] if "=" in w)]
        words = words[len(settings) :]
    assert words[0] == "gunicorn", words
    return [*settings, sys.executable, "-m", "gunicorn", *words[1:], "--log-level", "warning"]


def start_gunicorn(app_root: Path, emulator_url: str, database: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_BASE"))}
    env.update(
        DATABASE_PATH=str(database),
        SANDBOX_EMULATOR_URL=emulator_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_WHATSAPP_NUMBER=BOT_NUMBER,
        TWILIO_API_BASE=emulator_url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(app_root),
    )
    port = free_port()
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a")  # noqa: SIM115 - lives as long as the server
    command = procfile_command(app_root, port)
    process = subprocess.Popen(command, cwd=app_root, env=env, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                for _ in range(8):  # every worker up before measuring
                    httpx.get(url + "/", timeout=5)
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    kill(process)
    raise SystemExit("gunicorn did not start")


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the process and its children: a graceful stop would wait for every chat still with a model."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# --- the clients ----------------------------------------------------------------------------------------------


def send_webhooks(url: str, prefix: str) -> list[float]:
    """20 signed inbound messages, one every 0.25 s, each on its own connection; latencies in ms."""
    validator = RequestValidator(AUTH_TOKEN)
    webhook = f"{url}/webhook/whatsapp"
    latencies: list[float] = [TWILIO_TIMEOUT_S * 1000] * WEBHOOKS

    def send(index: int) -> None:
        customer = f"+237{prefix}{index:07d}"
        form = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "From": f"whatsapp:{customer}",
            "To": f"whatsapp:{BOT_NUMBER}",
            "Body": "Bonjour, j'ai une fuite d'eau",
            "NumMedia": "0",
            "ProfileName": "Flood",
        }
        headers = {"X-Twilio-Signature": validator.compute_signature(webhook, form)}
        started = time.monotonic()
        try:
            response = httpx.post(webhook, data=form, headers=headers, timeout=TWILIO_TIMEOUT_S)
        except httpx.TimeoutException:
            return
        if response.status_code == 200:
            latencies[index] = (time.monotonic() - started) * 1000

    threads = []
    for index in range(WEBHOOKS):
        thread = threading.Thread(target=send, args=(index,), daemon=True)
        thread.start()
        threads.append(thread)
        time.sleep(WEBHOOK_INTERVAL_S)
    for thread in threads:
        thread.join(TWILIO_TIMEOUT_S + 5)
    return latencies


class ChatFlood:
    """48 clients posting to /webhook/chat in a loop, counting the answers they get."""

    def __init__(self, url: str, pause_s: float) -> None:
        self.url = url
        self.pause_s = pause_s
        self.statuses: Counter[str] = Counter()
        self.in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        for index in range(CHAT_CLIENTS):
            threading.Thread(target=self._client, args=(index,), daemon=True).start()

    def stop(self) -> tuple[Counter[str], int]:
        """Stop counting; requests still waiting for an answer are reported as in flight."""
        self._stop.set()
        with self._lock:
            return Counter(self.statuses), self.in_flight

    def _client(self, index: int) -> None:
        session: str | None = None
        with httpx.Client(timeout=CHAT_TIMEOUT_S) as client:
            while not self._stop.is_set():
                body = {"session": session} if session else {"user": f"flood-{index}"}
                with self._lock:
                    self.in_flight += 1
                try:
                    response = client.post(f"{self.url}/webhook/chat", json={**body, "message": "Bonjour, fuite d'eau"})
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    response, status = None, type(exc).__name__
                with self._lock:
                    self.in_flight -= 1
                    if self._stop.is_set():
                        return  # answered after the measurement: not counted
                    self.statuses[status] += 1
                if response is not None and response.status_code == 200:
                    session = response.json().get("session") or session
                else:
                    time.sleep(self.pause_s)


# --- the run --------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-root", type=Path, default=ROOT, help="checkout whose app gunicorn serves")
    parser.add_argument("--latency", type=float, default=8.0, help="provider latency in seconds (default 8)")
    parser.add_argument("--settle", type=float, default=2.0, help="chat load before the webhooks start (default 2)")
    parser.add_argument("--pause", type=float, default=0.5, help="a chat client's pause after a refusal (default 0.5)")
    args = parser.parse_args()
    app_root = args.app_root.resolve()

    emulator, emulator_url = start_emulator(args.latency)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            server, url = start_gunicorn(app_root, emulator_url, Path(workdir) / "flood.db")
            try:
                print(f"Chat flood against {app_root}: gunicorn per Procfile (2 workers x 4 threads) on 127.0.0.1,")
                print(f"providers answering after {args.latency:g} s; {CHAT_CLIENTS} chat clients, {WEBHOOKS} webhooks")
                send_webhooks(url, "50")  # warm-up: first requests of each worker (imports, connections)
                baseline = send_webhooks(url, "51")
                flood = ChatFlood(url, args.pause)
                flood_started = time.monotonic()
                flood.start()
                time.sleep(args.settle)
                loaded = send_webhooks(url, "52")
                # Long enough for the first model answers to come back, so chat 200s show too.
                time.sleep(max(0.0, flood_started + args.settle + args.latency + 1 - time.monotonic()))
                statuses, in_flight = flood.stop()
            finally:
                kill(server)
        calls = httpx.get(f"{emulator_url}/_emulator/calls", timeout=10).json()["calls"]
    finally:
        kill(emulator)

    print("(1) baseline, no chat load")
    base50, base99 = summary("POST /webhook/whatsapp ack", baseline)
    print(f"  acked within Twilio's 15 s: {sum(v < TWILIO_TIMEOUT_S * 1000 for v in baseline)}/{WEBHOOKS}")
    print(f"(2) with {CHAT_CLIENTS} chat clients")
    ack50, ack99 = summary("POST /webhook/whatsapp ack", loaded)
    print(f"  acked within Twilio's 15 s: {sum(v < TWILIO_TIMEOUT_S * 1000 for v in loaded)}/{WEBHOOKS}")
    print(f"  ratio to baseline: p50 {ack50 / base50:.1f}x   p99 {ack99 / base99:.1f}x")
    answered = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    print(f"  chat answers while measured: {answered or 'none'}; still waiting at the end: {in_flight}")
    print(f"  provider calls received by the emulator (whole run, WhatsApp workers included): {len(calls)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
