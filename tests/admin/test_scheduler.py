"""The scheduler: run claims in SQLite, the in-process mode of ``serve``, and the worker's beside gunicorn."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask

from bot.admin.job_runs import JobRuns
from bot.admin.scheduler import ScheduledJob, build_scheduler, run_claimed
from bot.cli.serve import scheduler_for
from bot.store import Store
from bot.web import services_of
from tests.admin.conftest import AUTH, BOT_COMMAND, REPO_ROOT, process_env
from tests.support import wait_until

DEADLINE_S = 90.0


def test_a_job_runs_once_per_interval_whichever_scheduler_fires_first(store: Store) -> None:
    now = [1_000.0]
    first, second = (JobRuns(store, lambda: now[0], holder) for holder in ("clock-a", "clock-b"))

    assert first.claim("selftest", 240) is True
    assert second.claim("selftest", 240) is False
    now[0] += 239
    assert second.claim("selftest", 240) is False
    now[0] += 1
    assert second.claim("selftest", 240) is True
    assert store.db["scheduler_runs"].get("selftest")["holder"] == "clock-b"
    assert store.db["scheduler_runs"].get("selftest")["runs"] == 2


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(store: Store) -> None:
    runs = JobRuns(store)
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("queue unavailable; api_key=sk-secret-000000000")

    assert run_claimed(ScheduledJob("resume_inbound", broken, 60), runs) is True
    assert run_claimed(ScheduledJob("other", lambda: ran.append("other"), 60), runs) is True

    row = store.db["scheduler_runs"].get("resume_inbound")
    assert row["last_error"].startswith("RuntimeError: queue unavailable")
    assert "sk-secret" not in row["last_error"]
    assert ran == ["other"]
    with pytest.raises(ValueError, match="unique"):
        build_scheduler([ScheduledJob("a", print, 1), ScheduledJob("a", print, 1)], runs, blocking=False)


def test_serve_mode_runs_the_jobs_in_its_own_process(make_app, emulator) -> None:
    app: Flask = make_app(env={"SELFTEST_INTERVAL_MINUTES": "60", "IDLE_PROBE_AFTER_MINUTES": "0"})
    store = app.extensions["djobea"].store
    scheduler = scheduler_for(services_of(app), blocking=False)

    job_count = len(scheduler.get_jobs())  # selftest, alerts, retention, resume_inbound

    def all_jobs_finished() -> bool:
        rows = list(store.db.query("select job, last_finished_at from scheduler_runs"))
        return len(rows) == job_count and all(row["last_finished_at"] for row in rows)

    scheduler.start()
    try:
        wait_until(all_jobs_finished, timeout=20, what="every job to run")
    finally:
        scheduler.shutdown(wait=True)

    probes = list(store.db.query("select provider from llm_calls where purpose = 'selftest' order by provider"))
    assert [p["provider"] for p in probes] == ["claude", "gemini", "openai"]
    assert emulator.call_count() == 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.slow
def test_one_scheduler_acts_beside_several_gunicorn_workers(
    admin_env: dict[str, str], emulator, tmp_path: Path, processes: list[subprocess.Popen]
) -> None:
    database = tmp_path / "bot.db"
    Store(database)  # migrate once before the processes race to it
    env = process_env({**admin_env, "SELFTEST_INTERVAL_MINUTES": "60", "IDLE_PROBE_AFTER_MINUTES": "0"}, database)
    markers = tmp_path / "workers"
    markers.mkdir()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "import os\n\n\ndef post_worker_init(worker):\n"
        f"    open(os.path.join({str(markers)!r}, f'worker-{{os.getpid()}}'), 'w').close()\n"
    )
    port = free_port()
    gunicorn_log = (tmp_path / "gunicorn.log").open("w")
    processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}", "-c", str(config), "wsgi:app"],
            env=env,
            cwd=REPO_ROOT,
            stdout=gunicorn_log,
            stderr=subprocess.STDOUT,
        )
    )
    clock_logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    # The Procfile's worker runs the scheduler, and a clock was started beside it by mistake: the run claims
    # still allow one run.
    for command, log_path in zip((["worker", "--with-scheduler"], ["clock"]), clock_logs, strict=True):
        processes.append(
            subprocess.Popen(
                [*BOT_COMMAND, *command], env=env, cwd=REPO_ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT
            )
        )

    def clocks_decided() -> bool:
        return all("job selftest:" in path.read_text() for path in clock_logs)

    def selftest_finished() -> bool:
        rows = list(Store(database).db.query("select last_finished_at from scheduler_runs where job = 'selftest'"))
        return bool(rows and rows[0]["last_finished_at"])

    wait_until(lambda: len(os.listdir(markers)) == 3, timeout=DEADLINE_S, what="three gunicorn workers")
    wait_until(clocks_decided, timeout=DEADLINE_S, what="both schedulers to try the self-test")
    wait_until(selftest_finished, timeout=DEADLINE_S, what="the self-test run to finish")
    for process in processes:
        assert process.poll() is None, "a process died"

    logs = [path.read_text() for path in clock_logs]
    assert sum("job selftest: run claimed" in text for text in logs) == 1
    assert sum("job selftest: skipped" in text for text in logs) == 1
    probes = list(Store(database).db.query("select provider from llm_calls where purpose = 'selftest'"))
    assert sorted(p["provider"] for p in probes) == ["claude", "gemini", "openai"]
    assert {p: emulator.call_count(p) for p in ("claude", "gemini", "openai")} == {
        "claude": 1,
        "gemini": 1,
        "openai": 1,
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for _ in range(6):  # whichever worker answers, it reads the one shared run record
            status = http.get("/api/llm/status", headers=AUTH).json()
            assert status["scheduler"]["selftest"]["runs"] == 1
            assert status["probes_today"]["probes"] == 3
    for clock in processes[1:]:
        clock.send_signal(signal.SIGTERM)
        assert clock.wait(timeout=15) == 0  # a clean stop on SIGTERM, as the platform sends it
