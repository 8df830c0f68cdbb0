"""Start-up cost of the commands a person runs, and of a gunicorn worker, on this machine.

Prints, all measured in this one run (median of ``--runs`` wall times, each in a fresh interpreter):
  baseline   ``python -c pass`` (the interpreter alone);
  --help     ``python -m bot --help``;
  status     ``python -m bot status`` on a fresh database (sandbox mode: no provider key);
  ask        ``python -m bot ask "Bonjour"`` against a provider emulator running in its own process;
  gunicorn   one ``gunicorn wsgi:app`` worker, from exec to the first answer to ``GET /``.
Each figure is also given as a ratio to the baseline. Goals (issue 12): ``--help`` <= 0.5 s, ``status`` <= 1 s.

    python benchmarks/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
KEYS = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-500:]}")
    return elapsed


def gunicorn_boot(env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", 60)
        return time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="djobea-startup-"))
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update({"DATABASE_PATH": str(workdir / "bot.db"), "PYTHONPATH": str(ROOT), "WHATSAPP_WORKER_THREADS": "0"})

    port = free_port()
    emulator = subprocess.Popen(
        [PYTHON, "-m", "bot.sandbox.emulator", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_emulator/calls", 60)
        with_emulator = {**env, "SANDBOX_EMULATOR_URL": f"http://127.0.0.1:{port}"}
        cases = {
            "baseline (python -c pass)": lambda: timed([PYTHON, "-c", "pass"], env),
            "python -m bot --help": lambda: timed([PYTHON, "-m", "bot", "--help"], env),
            "python -m bot status": lambda: timed([PYTHON, "-m", "bot", "status"], with_emulator),
            'python -m bot ask "Bonjour"': lambda: timed([PYTHON, "-m", "bot", "ask", "Bonjour"], with_emulator),
            "gunicorn worker boot to first GET /": lambda: gunicorn_boot(with_emulator),
        }
        results = {name: statistics.median(run() for _ in range(args.runs)) for name, run in cases.items()}
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=30)
    baseline = results["baseline (python -c pass)"]
    print(f"{'command':42} {'median s':>9} {'x baseline':>11}")
    for name, seconds in results.items():
        print(f"{name:42} {seconds:9.2f} {seconds / baseline:11.1f}")


if __name__ == "__main__":
    main()
