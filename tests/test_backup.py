"""``python -m bot backup PATH``: an online copy taken while another writer keeps writing, and its refusals."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from bot.store import Store

REPO_ROOT = Path(__file__).resolve().parents[1]


def backup(database: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_PATH": str(database), "DJOBEA_DOTENV": "0", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "backup", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def add_event(store: Store, index: int) -> None:
    with store.immediate() as db:
        db["provider_events"].insert({"provider": "claude", "at": time.time(), "reason": f"backup-test-{index}"})


def test_backup_while_another_thread_writes(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    store = Store(database)
    for index in range(200):
        add_event(store, index)
    stop = threading.Event()
    written = [0]

    def keep_writing() -> None:
        writer = Store(database)
        while not stop.is_set():
            add_event(writer, 10_000 + written[0])
            written[0] += 1

    thread = threading.Thread(target=keep_writing, daemon=True)
    thread.start()
    try:
        result = backup(database, str(tmp_path / "copy.db"))
    finally:
        stop.set()
        thread.join(10)

    assert result.returncode == 0, result.stderr
    assert written[0] > 0  # the writer really ran during the backup
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert copy.execute("pragma journal_mode").fetchone()[0] == "delete"
    kinds = {row[0] for row in copy.execute("select reason from provider_events")}
    assert {f"backup-test-{i}" for i in range(200)} <= kinds
    assert copy.execute("select count(*) from _sqlite_migrations").fetchone()[0] > 0
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


def test_backup_keeps_an_existing_file_unless_forced(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    Store(database)
    target = tmp_path / "copy.db"
    target.write_text("precious")

    refused = backup(database, str(target))
    forced = backup(database, "--force", str(target))

    assert refused.returncode == 2 and "exists; pass --force" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert sqlite3.connect(target).execute("pragma integrity_check").fetchone()[0] == "ok"


def test_a_bad_path_is_exit_2_with_the_reason(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    Store(database)

    missing_folder = backup(database, str(tmp_path / "nowhere" / "copy.db"))
    a_directory = backup(database, str(tmp_path))
    itself = backup(database, "--force", str(database))

    assert missing_folder.returncode == 2 and "does not exist" in missing_folder.stderr
    assert a_directory.returncode == 2 and "is a directory" in a_directory.stderr
    assert itself.returncode == 2 and "is the database itself" in itself.stderr
    assert "Traceback" not in missing_folder.stderr + a_directory.stderr + itself.stderr
