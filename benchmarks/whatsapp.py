"""Benchmark of the WhatsApp side, served by gunicorn on 127.0.0.1, with a second process as the load source.

Prints, all measured in this one run:
  (a) webhook ack latency p50/p99 of signed POST /webhook/whatsapp at a steady inbound rate (open loop),
      and the same for GET / (a trivial route on the same server) as the baseline; ratio = ack / baseline;
  (b) end-to-end reply latency (webhook POST -> reply accepted by the emulated Twilio) with every provider
      answering after a fixed latency; ratio = end-to-end / provider latency.

The provider emulator and the emulated Twilio run in this process; gunicorn serves ``wsgi:app`` on a fresh
database; latencies are taken from each request's scheduled send time, so a server falling behind shows.

    python benchmarks/whatsapp.py [--rate 200] [--seconds 10] [--latency 0.2] [--e2e-messages 100]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402
from percentiles import percentile  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)
from twilio.request_validator import RequestValidator  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-twilio-token-0001"
BOT_NUMBER = "+14155238886"
SENDER_THREADS = 32


# --- the load source (runs in its own process) ------------------------------------------------------------


def load(url: str, mode: str, rate: float, count: int, prefix: str = "6") -> None:
    """Send ``count`` requests at ``rate``/s; print one JSON line {latencies_ms, sent_at, errors}.

    Customers are +237<prefix><index>, so separate runs (warm-up, measure) never share a conversation.
    """
    validator = RequestValidator(AUTH_TOKEN)
    webhook = f"{url}/webhook/whatsapp"
    start = time.time() + 1.0  # every sender thread connects and warms up before the first scheduled send
    latencies: list[float] = [0.0] * count
    sent_at: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def sender(offset: int) -> None:
        with httpx.Client(timeout=30) as client:
            client.get(f"{url}/")  # open the keep-alive connection outside the measurement
            for index in range(offset, count, SENDER_THREADS):
                scheduled = start + index / rate
                delay = scheduled - time.time()
                if delay > 0:
                    time.sleep(delay)
                if mode == "index":
                    response = client.get(f"{url}/")
                else:
                    customer = f"+237{prefix}{index:08d}"
                    form = {
                        "MessageSid": f"SM{uuid.uuid4().hex}",
                        "From": f"whatsapp:{customer}",
                        "To": f"whatsapp:{BOT_NUMBER}",
                        "Body": "Bonjour, j'ai une fuite d'eau sous l'évier",
                        "NumMedia": "0",
                        "ProfileName": "Bench",
                    }
                    signature = validator.compute_signature(webhook, form)
                    with lock:
                        sent_at[f"whatsapp:{customer}"] = time.time()
                    response = client.post(webhook, data=form, headers={"X-Twilio-Signature": signature})
                latencies[index] = (time.time() - scheduled) * 1000
                if response.status_code != 200:
                    with lock:
                        errors.append(f"{response.status_code} {response.text[:100]}")

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(SENDER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"latencies_ms": latencies, "sent_at": sent_at, "errors": errors[:5], "error_count": len(errors)}))


def run_load(url: str, mode: str, rate: float, count: int, prefix: str = "6") -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "load", url, mode, str(rate), str(count), prefix],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


# --- the server under test --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "8",
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app",
        ],
        cwd=ROOT, env=env, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                # Every worker must be up before measuring: touch the server a few times more.
                for _ in range(workers * 4):
                    httpx.get(url + "/", timeout=5)
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def server_env(emulator, database: Path, worker_threads: int) -> dict[str, str]:
    names = {"claude": "ANTHROPIC", "gemini": "GEMINI", "openai": "OPENAI"}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for provider, name in names.items():
        env[f"{name}_API_KEY"] = f"bench-key-{provider}"
        env[f"{name}_API_BASE"] = emulator.api_base(provider)
    env.update(
        DATABASE_PATH=str(database),
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_WHATSAPP_NUMBER=BOT_NUMBER,
        TWILIO_API_BASE=emulator.base_url,
        WHATSAPP_WORKER_THREADS=str(worker_threads),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(ROOT),
    )
    return env


def wait_for_replies(emulator, count: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while len(emulator.twilio.messages()) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def summary(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(f"  {name:<34} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={len(samples)})")
    return p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="inbound messages per second (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each ack phase (default 10)")
    parser.add_argument("--latency", type=float, default=0.2, help="provider latency in seconds (default 0.2)")
    parser.add_argument("--e2e-messages", type=int, default=100, help="messages for the end-to-end phase")
    parser.add_argument("--e2e-rate", type=float, default=20.0, help="their rate per second (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    args = parser.parse_args()

    from bot.sandbox import ProviderEmulator
    from bot.sandbox.scripted_model import djobea_model_reply

    count = int(args.rate * args.seconds)
    with ProviderEmulator() as emulator, tempfile.TemporaryDirectory() as workdir:
        emulator.set_responder(None, djobea_model_reply)
        emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
        print(f"WhatsApp benchmark: gunicorn {args.workers} workers x 8 threads on 127.0.0.1, load from a 2nd process")

        # (a) ack latency: workers off, so only the webhook's own work (verify, store, answer) is measured.
        process, url = start_gunicorn(server_env(emulator, Path(workdir) / "ack.db", 0), args.workers)
        try:
            print(f"(a) ack latency at {args.rate:.0f} msg/s for {args.seconds:.0f} s")
            baseline = run_load(url, "index", args.rate, count)
            acks = run_load(url, "webhook", args.rate, count)
        finally:
            stop(process)
        base50, base99 = summary("GET / (baseline, same server)", baseline["latencies_ms"])
        ack50, ack99 = summary("POST /webhook/whatsapp (signed)", acks["latencies_ms"])
        print(f"  ratio ack/baseline: p50 {ack50 / base50:.2f}x   p99 {ack99 / base99:.2f}x")
        print(f"  non-200 answers: baseline {baseline['error_count']}, webhook {acks['error_count']}")

        # (b) end to end: every provider answers after a fixed latency; 4 worker threads per web process.
        for provider in ("claude", "gemini", "openai"):
            emulator.set_latency(provider, args.latency)
        process, url = start_gunicorn(server_env(emulator, Path(workdir) / "e2e.db", 4), args.workers)
        try:
            print(f"(b) end-to-end reply latency, {args.e2e_messages} messages at {args.e2e_rate:.0f} msg/s, "
                  f"provider latency {args.latency * 1000:.0f} ms")  # fmt: skip
            warmup = 4 * args.workers  # first calls of each process (imports, connections) are not measured
            run_load(url, "webhook", args.e2e_rate, warmup, prefix="5")
            wait_for_replies(emulator, warmup)
            result = run_load(url, "webhook", args.e2e_rate, args.e2e_messages)
            wait_for_replies(emulator, warmup + args.e2e_messages)
        finally:
            stop(process)
        accepted = emulator.twilio.accepted_at()
        e2e = [
            (accepted[m["sid"]] - result["sent_at"][m["to"]]) * 1000
            for m in emulator.twilio.messages()
            if m["to"] in result["sent_at"]
        ]
        e2e50, e2e99 = summary("webhook -> reply at Twilio", e2e)
        recipients = [m["to"] for m in emulator.twilio.messages()]
        print(f"  replies: {len(e2e)}/{args.e2e_messages}; duplicate replies: {len(recipients) - len(set(recipients))}")
        print(f"  ratio end-to-end/provider latency: p50 {e2e50 / (args.latency * 1000):.2f}x   "
              f"p99 {e2e99 / (args.latency * 1000):.2f}x   (mean {statistics.mean(e2e):.1f} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        raise SystemExit(main())
