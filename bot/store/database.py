"""One SQLite file in WAL mode, shared by every gunicorn worker, the scheduler and the CLI.

State lives here rather than in module globals so that a second process sees the same provider
health, conversations and queue. Each thread gets its own connection: sqlite3 connections must not
be shared between threads, and LiteLLM runs success callbacks on its own logging threads.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from bot.store.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000


class Store:
    """A migrated SQLite database file, with one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection, opened on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(_connect(self.path))
            self._local.db = db
        return db

    @contextmanager
    def immediate(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction taken at once (BEGIN IMMEDIATE), for read-modify-write across processes.

        Taking the write lock before reading is what makes a state transition or a lease claim atomic
        between workers: nobody can read the old state while we are replacing it.
        """
        db = self.db
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()

    def close(self) -> None:
        """Close this thread's connection (other threads' close with their thread)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _migrate(self) -> None:
        # Several workers start at once: a file lock lets exactly one apply pending migrations.
        lock_path = self.path.with_name(self.path.name + ".migrate.lock")
        with open(lock_path, "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                MIGRATIONS.apply(self.db)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
