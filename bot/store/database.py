"""One SQLite file in WAL mode, shared by every gunicorn worker, the scheduler and the CLI.

State lives here rather than in module globals so that a second process sees the same provider
health, conversations and queue. Each thread gets its own connection: sqlite3 connections must not
be shared between threads, and LiteLLM runs success callbacks on its own logging threads. A thread's
connection is closed when the thread ends, so pools that churn threads do not pile up open files.

A path that cannot hold the database (a directory, a path under a regular file, no permission, a file
that is not SQLite) is refused when the store opens, with ``StoreOpenError`` naming the path.
"""

from __future__ import annotations

import errno
import fcntl
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from bot.store.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000
# How often a prompt writer (``Store.immediate(prompt=True)``) tries again for the write lock.
PROMPT_RETRY_S = 0.0005


class StoreOpenError(Exception):
    """The database file cannot be opened or created at the path given (DATABASE_PATH, or ``chat --db``).

    Raised by ``Store()`` at start-up, before any migration runs; the message names the path and why
    (``cannot open the database /srv/bot.db: /srv is not a directory``). The CLI prints it as a
    configuration error and exits with status 2; ``create_app`` lets it through, so gunicorn's boot
    failure says the same.
    """


class StoreBusy(sqlite3.OperationalError):
    """Another connection held the write lock for longer than the caller would wait (``Store.immediate``'s
    ``within_s``); nothing was written."""


class Store:
    """A migrated SQLite database file, with one connection per thread.

    ``migrations``: the schema of this file; the default is the application's (``bot.store.migrations``).
    """

    def __init__(self, path: str | Path, migrations: Migrations = MIGRATIONS) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._migrations = migrations
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection, opened on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(_connect(self.path))
            self._local.db = db
            _close_when_this_thread_ends(db)
        return db

    @contextmanager
    def immediate(self, *, prompt: bool = False, within_s: float | None = None) -> Iterator[sqlite_utils.Database]:
        """A write transaction taken at once (BEGIN IMMEDIATE), for read-modify-write across processes.

        Taking the write lock before reading is what makes a state transition or a lease claim atomic
        between workers: nobody can read the old state while we are replacing it.

        ``prompt``: for a writer someone waits on (the webhook Twilio holds open). SQLite's own busy handler
        sleeps ever longer between tries (1, 2, 5 ... 100 ms), so while the worker threads commit hundreds of
        times a second, a webhook could wait tens of milliseconds for a lock free most of the time; a prompt
        writer tries again every ``PROMPT_RETRY_S`` instead, and so goes ahead of the background writers.

        ``within_s`` (prompt writers only): raise ``StoreBusy`` when the lock is not ours within that many seconds,
        for a caller that has somewhere else to put its write (the webhook's ``InboundSpool``).
        """
        db = self.db
        if prompt:
            _begin_promptly(db.conn, BUSY_TIMEOUT_MS / 1000 if within_s is None else within_s)
        else:
            db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.conn.commit()
        except BaseException as exc:
            # Also when COMMIT itself fails (busy): left open, the transaction would hold this thread's next one.
            if db.conn.in_transaction:
                db.conn.rollback()
            if isinstance(exc, sqlite3.OperationalError):
                # SQLite opens a file it cannot write (immutable, read-only mount) read-only for good: kept, the
                # connection would refuse this thread's writes long after the outage. The next use reopens.
                self.close()
            raise

    def close(self) -> None:
        """Close this thread's connection (other threads' close with their thread); the next use reopens one.

        Call it after a storage error outside ``immediate`` too, for the same reason as there."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _migrate(self) -> None:
        # Several workers start at once: a file lock lets exactly one apply pending migrations.
        lock_path = self.path.with_name(self.path.name + ".migrate.lock")
        with _refused_as_store_open_error(self.path):
            if self.path.is_dir():  # checked first: sqlite3 would only say "unable to open database file"
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(self.path))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = open(lock_path, "w")  # noqa: SIM115 (the with block below closes it)
        with lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with _refused_as_store_open_error(self.path):
                    db = self.db  # the first connection reads the file: "not a database" surfaces here
                self._migrations.apply(db)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def _begin_promptly(conn: sqlite3.Connection, within_s: float) -> None:
    """BEGIN IMMEDIATE, tried every ``PROMPT_RETRY_S`` until it succeeds or ``within_s`` has passed (``StoreBusy``)."""
    deadline = time.monotonic() + within_s
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusy(f"the write lock stayed busy for {within_s:g} s") from exc
            time.sleep(PROMPT_RETRY_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class _ThreadConnections:
    """The connections one thread opened, closed when that thread ends.

    A sqlite3 connection is in a reference cycle of its own (its statement cache), so a dead thread's would
    wait for the garbage collector, holding the file and its WAL open meanwhile. CPython releases a thread's
    slot of a ``threading.local`` when the thread ends, which drops this object and closes them. It lives in
    a module-level local rather than the store's, so that a ``Database`` a caller still holds
    (``Store(path).db``) stays open while its thread lives, even once its ``Store`` is gone.
    """

    __slots__ = ("opened",)

    def __init__(self) -> None:
        self.opened: list[tuple[weakref.ref[sqlite_utils.Database], sqlite3.Connection]] = []

    def add(self, db: sqlite_utils.Database) -> None:
        # A connection whose Database is gone (closed, or its store dropped) is no longer this thread's to close.
        self.opened = [(ref, conn) for ref, conn in self.opened if ref() is not None]
        self.opened.append((weakref.ref(db), db.conn))

    def __del__(self) -> None:
        for _, conn in self.opened:
            conn.close()  # closing twice (after ``Store.close``) does nothing


_this_thread = threading.local()  # process bookkeeping, not state: only this thread's ``_ThreadConnections``


def _close_when_this_thread_ends(db: sqlite_utils.Database) -> None:
    connections = getattr(_this_thread, "connections", None)
    if connections is None:
        connections = _this_thread.connections = _ThreadConnections()
    connections.add(db)


@contextmanager
def _refused_as_store_open_error(path: Path) -> Iterator[None]:
    """Turn the OS's or SQLite's refusal to open ``path`` into a ``StoreOpenError`` that says why."""
    try:
        yield
    except (OSError, sqlite3.DatabaseError) as exc:
        raise StoreOpenError(f"cannot open the database {path}: {_why(path, exc)}") from exc


def _why(path: Path, exc: OSError | sqlite3.DatabaseError) -> str:
    if isinstance(exc, sqlite3.DatabaseError):
        return f"SQLite says: {exc}"
    if isinstance(exc, IsADirectoryError) and exc.filename == str(path):
        return "it is a directory; give the path of a database file"
    # mkdir reports only "File exists" or "Not a directory": name the regular file in the way.
    in_the_way = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        return f"{in_the_way} is not a directory"
    reason = exc.strerror or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
