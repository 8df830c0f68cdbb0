"""``python -m bot serve``: a production server (gunicorn, one worker) with the scheduler in that worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from bot.store import Store
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_gunicorn_and_its_scheduler_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    inherited = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_BASE"))}
    env = {**inherited, "DATABASE_PATH": str(database), "DJOBEA_DOTENV": "0", "PYTHONPATH": str(REPO_ROOT),
           "WHATSAPP_WORKER_THREADS": "0"}  # fmt: skip
    env.pop("SANDBOX_EMULATOR_URL", None)
    port = free_port()
    output = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:

        def index() -> dict | None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            except httpx.TransportError:
                return None
            return response.json() if response.status_code == 200 else None

        assert wait_until(index, timeout=DEADLINE_S, what="GET /")["service"] == "djobea-ai"

        def a_job_ran() -> bool:
            if not database.exists():
                return False
            return bool(Store(database).db.execute("select count(*) from scheduler_runs").fetchone()[0])

        wait_until(a_job_ran, timeout=DEADLINE_S, what="a scheduler job to run")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)

    text = output.read_text(encoding="utf-8")
    assert code == 0, text
    assert "development server" not in text.lower()
    assert "Booting worker" in text and "serve: scheduler started" in text
    assert '"GET / HTTP/1.1" 200' in text  # the access log
    assert "Traceback" not in text


def test_serve_stops_on_a_bad_setting_before_starting_gunicorn(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "bot.db"), "DJOBEA_DOTENV": "0",
           "PYTHONPATH": str(REPO_ROOT), "WHATSAPP_WORKER_THREADS": "many"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2 and "WHATSAPP_WORKER_THREADS" in result.stderr
    assert "Booting worker" not in result.stderr + result.stdout
