"""Capacity benchmark of the WhatsApp side (issue 8): the Procfile's processes under load, measured from outside.

Runs, on 127.0.0.1 and a fresh database, every line of the Procfile as it is (the web line's bind address forced
to 127.0.0.1), the provider/Twilio emulator as ``python -m bot.sandbox.emulator`` in its own process
(latency set through its control API), and the load from a third process (``benchmarks/whatsapp.py load``). Prints:

  P5  webhook ack p50/p99 at --p5-rate msg/s while every worker is busy (providers answer after 3 s), with GET /
      on the same server just before as the baseline; non-200 answers (lost = not 200), messages stored, and how
      many went through the spool (``bot.inbound.spool``: the write lock was busy).
  P6  webhook -> reply accepted by Twilio p50/p99 (reply's ``sent_at`` in ``outbound_messages``), one message per
      customer: N at R/s with 500 ms providers, then N' at R'/s with 3 s providers; answered / exactly once.
  P7  PSS (``/proc/<pid>/smaps_rollup``) of every Procfile process and its children after the traffic, and their
      CPU (utime+stime from ``/proc/<pid>/stat``) per answered message over the first P6 phase.

    python benchmarks/capacity.py [--scale 1.0] [--p5-rate 200] [--threads N] [--profile] [--procfile PATH]

``--scale 0.3`` runs P6 with 30% of the messages (same rates) when the full run would take too long. ``--profile``
samples the processes that answer (every Procfile line but web) with py-spy over P6's first phase and splits their
CPU per message by library (LiteLLM's own share among them). ``--procfile`` measures another process layout.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402
from percentiles import percentile  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)
from whatsapp import ACCOUNT_SID, AUTH_TOKEN, free_port, run_load  # noqa: E402
from whatsapp import server_env as whatsapp_server_env  # noqa: E402

from bot.inbound.spool import DIRECT_WRITE_WAIT_S  # noqa: E402

PROVIDERS = ("claude", "gemini", "openai")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the emulator, in its own process ---------------------------------------------------------------------


class RemoteEmulator:
    """``python -m bot.sandbox.emulator --port 0`` driven through its ``/_emulator/`` control API."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.sandbox.emulator", "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.base_url = self.process.stdout.readline().strip()
        self.control("twilio/credentials", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})

    def control(self, path: str, body: dict) -> None:
        httpx.post(f"{self.base_url}/_emulator/{path}", json=body, timeout=10).raise_for_status()

    def set_latency(self, seconds: float) -> None:
        for provider in PROVIDERS:
            self.control("latency", {"provider": provider, "seconds": seconds})

    def messages(self) -> list[dict]:
        return httpx.get(f"{self.base_url}/_emulator/twilio/messages", timeout=30).json()["messages"]

    def api_base(self, provider: str) -> str:
        return self.base_url + "/v1" if provider == "openai" else self.base_url

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- the Procfile's processes -----------------------------------------------------------------------------


PROCFILE = ROOT / "Procfile"


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if re.match(r"^\w+:", line))


def server_env(emulator: RemoteEmulator, database: Path, threads: int | None, port: int) -> dict[str, str]:
    """``benchmarks/whatsapp.py``'s server environment, for the Procfile's lines: its PATH finds this venv's
    gunicorn, and WHATSAPP_WORKER_THREADS is left to the Procfile (and its defaults) unless ``threads`` is given."""
    env = whatsapp_server_env(emulator, database, 0)
    del env["WHATSAPP_WORKER_THREADS"]
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", PORT=str(port), LOG_LEVEL="warning")
    if threads is not None:
        env["WHATSAPP_WORKER_THREADS"] = str(threads)
    return env


class Procs:
    """Every line of the Procfile, started as it is (the bind address forced to 127.0.0.1), each in its own
    session; ``web`` is the one serving HTTP."""

    def __init__(self, env: dict[str, str], log_path: str, layout: Path = PROCFILE) -> None:
        self.log = open(log_path, "a")  # noqa: SIM115 - lives as long as the processes
        self.processes: dict[str, subprocess.Popen] = {}
        for name, line in procfile(layout).items():
            command = line.strip().replace("0.0.0.0", "127.0.0.1")
            self.processes[name] = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=self.log, stderr=self.log,
                start_new_session=True,
            )  # fmt: skip
        self.url = f"http://127.0.0.1:{env['PORT']}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    for _ in range(16):
                        httpx.get(self.url + "/", timeout=5)
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def pids(self) -> dict[str, list[int]]:
        """Each Procfile process with its children (gunicorn's workers)."""
        return {name: [p.pid, *children(p.pid)] for name, p in self.processes.items()}

    def all_pids(self) -> list[int]:
        return [pid for pids in self.pids().values() for pid in pids]

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for child in map(int, text):
            found += [child, *children(child)]
    return found


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / CLK_TCK


# --- measuring --------------------------------------------------------------------------------------------

# Where a CPU sample of the answering processes is spent: the first of these found anywhere in its stack
# (a stack through LiteLLM that ends in httpx or SQLite counts as LiteLLM: it is LiteLLM's call).
# py-spy names a frame "function (package/module.py:line)", with the path from site-packages or the checkout.
PROFILE_OWNERS = tuple(
    (name, re.compile(rf"[(/]{package}/"))
    for name, package in (
        ("LiteLLM", "litellm"),
        ("Twilio client", "twilio"),
        ("LangChain", "langchain_core"),
        ("APScheduler", "apscheduler"),
        ("our code (bot/)", "bot"),
    )
)


class Profiler:
    """``py-spy record --gil`` of the processes answering messages over a phase: only the thread holding the GIL
    is sampled, so the samples are where their Python CPU goes, not where their threads wait."""

    def __init__(self, pids: list[int], seconds: float, output: Path) -> None:
        self.output = output
        self.processes = [
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    f"{output}.{pid}",
                    "--nonblocking",
                    "--gil",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for pid in pids
        ]

    def shares(self) -> dict[str, float]:
        for process in self.processes:
            process.wait(timeout=600)
        counts: dict[str, int] = {}
        for path in self.output.parent.glob(f"{self.output.name}.*"):
            for line in path.read_text().splitlines():
                stack, _, number = line.rpartition(" ")
                frames = stack.split(";")
                owner = next(
                    (name for name, marker in PROFILE_OWNERS if any(marker.search(frame) for frame in frames)), "other"
                )
                counts[owner] = counts.get(owner, 0) + int(number)
        total = sum(counts.values()) or 1
        return {owner: n / total for owner, n in sorted(counts.items(), key=lambda item: -item[1])}


def summary(name: str, samples: list[float]) -> tuple[float, float]:
    if not samples:
        print(f"  {name:<38} no samples")
        return float("nan"), float("nan")
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(f"  {name:<38} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   max {max(samples):8.1f} ms   (n={len(samples)})")
    return p50, p99


def replies_sent(database: Path) -> dict[str, list[tuple[str, float | None]]]:
    """Recipient -> [(kind, sent_at)] of every outbound row handed to Twilio."""
    with sqlite3.connect(database, timeout=30) as db:
        rows = db.execute("select to_number, kind, sent_at from outbound_messages where sent_at is not null").fetchall()
    out: dict[str, list[tuple[str, float | None]]] = {}
    for to, kind, sent_at in rows:
        out.setdefault(to.removeprefix("whatsapp:"), []).append((kind, sent_at))
    return out


def spool_counts(database: Path) -> tuple[int, int]:
    """(messages ever spooled, messages in the spool now) of ``database``'s spool (``bot.inbound.spool``)."""
    spool = database.with_name(database.name + ".spool")
    if not spool.exists():
        return 0, 0
    with sqlite3.connect(spool, timeout=30) as db:
        ever = db.execute("select coalesce(max(seq), 0) from sqlite_sequence where name = 'spooled'").fetchone()[0]
        return ever, db.execute("select count(*) from spooled").fetchone()[0]


def wait_answered(database: Path, customers: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sent = replies_sent(database)
        if all(any(k == "reply" for k, _ in sent.get(c, ())) for c in customers):
            return
        time.sleep(0.5)


def e2e_phase(procs: Procs, emulator: RemoteEmulator, database: Path, count: int, rate: float, latency: float,
              prefix: str) -> int:  # fmt: skip
    emulator.set_latency(latency)
    print(f"  {count} messages from {count} customers at {rate:g}/s, providers {latency * 1000:.0f} ms")
    result = run_load(procs.url, "webhook", rate, count, prefix=prefix)
    sent_at = {to.removeprefix("whatsapp:"): t for to, t in result["sent_at"].items()}
    wait_answered(database, set(sent_at), timeout_s=count / rate + 240)
    sent = replies_sent(database)
    e2e, answered, duplicates, holding = [], 0, 0, 0
    for customer, at in sent_at.items():
        rows = sent.get(customer, [])
        replies = [s for k, s in rows if k == "reply"]
        holding += sum(1 for k, _ in rows if k == "holding")
        if replies:
            answered += 1
            duplicates += len(replies) - 1
            e2e.append((min(replies) - at) * 1000)
    summary("webhook -> reply handed to Twilio", e2e)
    recipients = [m["to"].removeprefix("whatsapp:") for m in emulator.messages()]
    mine = [r for r in recipients if r in sent_at]
    print(f"  answered {answered}/{count}; duplicate replies {duplicates}; holding replies {holding}; "
          f"Twilio messages to them {len(mine)} ({len(set(mine))} recipients); "
          f"webhook non-200 {result['error_count']}")  # fmt: skip
    return answered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of P6's message counts (default 1)")
    parser.add_argument("--p5-rate", type=float, default=200.0)
    parser.add_argument("--p5-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=None, help="WHATSAPP_WORKER_THREADS (default: unset)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the non-web processes over P6's first phase: CPU by library"
    )
    parser.add_argument("--procfile", type=Path, default=PROCFILE, help="another process layout to measure")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: p5, p6 (both), p6b")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    emulator = RemoteEmulator()
    with tempfile.TemporaryDirectory() as workdir:
        database = Path(workdir) / "capacity.db"
        env = server_env(emulator, database, args.threads, free_port())
        procs = Procs(env, os.environ.get("BENCH_SERVER_LOG", os.devnull), args.procfile)
        try:
            threads = args.threads if args.threads is not None else "default"
            print(f"Capacity: the Procfile's {', '.join(procs.processes)}, WHATSAPP_WORKER_THREADS={threads};"
                  " emulator, load: own processes")  # fmt: skip
            # Warm-up: every web process imports LiteLLM and opens its connections before anything is measured.
            emulator.set_latency(0.0)
            run_load(procs.url, "webhook", 10, 16, prefix="4")
            time.sleep(3)

            cpu0 = cpu1 = 0.0
            worker0 = worker1 = 0.0
            profiler = None
            answered = 0
            if "p6" not in skip:
                print("P6 end to end")
                cpu0 = cpu_s(procs.all_pids())
                worker0 = cpu_s([pid for name, pids in procs.pids().items() if name != "web" for pid in pids])
                if args.profile:
                    answering = [pid for name, pids in procs.pids().items() if name != "web" for pid in pids]
                    keep = Path(tempfile.mkdtemp(prefix="djobea-profile-"))  # kept: raw stacks for a closer look
                    profiler = Profiler(answering, 1000 * args.scale / 50 + 2, keep / "worker")
                answered = e2e_phase(procs, emulator, database, int(1000 * args.scale), 50, 0.5, "7")
                cpu1 = cpu_s(procs.all_pids())
                worker1 = cpu_s([pid for name, pids in procs.pids().items() if name != "web" for pid in pids])
            cpu_ms = (cpu1 - cpu0) * 1000 / max(answered, 1)
            worker_cpu_ms = (worker1 - worker0) * 1000 / max(answered, 1)
            if not {"p6", "p6b"} & skip:
                e2e_phase(procs, emulator, database, int(600 * args.scale), 20, 3.0, "8")

            if "p5" not in skip:
                print(f"P5 ack latency at {args.p5_rate:g} msg/s for {args.p5_seconds:g} s, workers busy (3 s LLM)")
                emulator.set_latency(3.0)
                count = int(args.p5_rate * args.p5_seconds)
                spooled0 = spool_counts(database)[0]
                baseline = run_load(procs.url, "index", args.p5_rate, count, prefix="3")
                acks = run_load(procs.url, "webhook", args.p5_rate, count, prefix="9")
                b50, b99 = summary("GET / (baseline, same server)", baseline["latencies_ms"])
                a50, a99 = summary("POST /webhook/whatsapp (signed)", acks["latencies_ms"])
                print(f"  ratio ack/baseline: p50 {a50 / b50:.2f}x  p99 {a99 / b99:.2f}x; non-200: "
                      f"baseline {baseline['error_count']}, webhook {acks['error_count']}")  # fmt: skip
                deadline = time.monotonic() + 30
                while spool_counts(database)[1] and time.monotonic() < deadline:  # the movers' last milliseconds
                    time.sleep(0.05)
                spooled, waiting = spool_counts(database)
                with sqlite3.connect(database, timeout=30) as db:
                    stored = db.execute("select count(*) from inbound_messages where customer_id like '%2379%'")
                    print(f"  stored {stored.fetchone()[0]}/{count}; {spooled - spooled0} went through the spool"
                          f" (write lock busy > {DIRECT_WRITE_WAIT_S * 1000:g} ms), {waiting} still there")  # fmt: skip

            print("P7 memory and CPU")
            total = 0.0
            for name, pids in procs.pids().items():
                pss = [pss_mb(pid) for pid in pids]
                total += sum(pss)
                print(f"  PSS {name}: {sum(pss):.0f} MB ({', '.join(f'{mb:.0f}' for mb in pss)})")
            print(f"  PSS total {total:.0f} MB (goal <= 450)")
            print(f"  CPU per answered message, every Procfile process (P6, first phase): {cpu_ms:.1f} ms"
                  f" ({cpu1 - cpu0:.2f} s/{answered})")  # fmt: skip
            if profiler is not None:
                print(f"  of which the answering processes (not web): {worker_cpu_ms:.1f} ms; where it went"
                      f" (py-spy, raw stacks in {profiler.output.parent}):")  # fmt: skip
                for owner, share in profiler.shares().items():
                    print(f"    {owner:<18} {share * 100:5.1f}%  {share * worker_cpu_ms:5.1f} ms a message")
        finally:
            procs.stop()
            emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
