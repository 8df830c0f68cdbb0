"""``InboundSpool``: where the webhook puts a message when the database's write lock is busy, so Twilio's
request is still acknowledged in milliseconds.

The worker process's threads hold the database's write lock for a few statements at a time, but with dozens of
them runnable at once (a burst of answers) the holder may wait for the GIL in between, and keep the lock for
hundreds of milliseconds: measured under ``benchmarks/capacity.py``'s P5, the webhook's p99 went from 4 ms to
50-350 ms, all of it waiting for that lock. A message the webhook cannot store within ``DIRECT_WRITE_WAIT_S`` is
written instead to ``<database>.spool``, a small SQLite file of its own that only the web processes write, and
acknowledged; a mover thread of that process (started by its first spooled message, or at start when the spool
holds messages) then moves it to the queue (``InboundQueue.enqueue_rows``) and wakes the workers::

    webhook ──lock free within 5 ms──> inbound_messages
       └──busy, or the spool holds messages──> spool ──mover (nudged; every MOVE_POLL_S)──> inbound_messages

Nothing is lost or reordered:
- A spooled message is committed before the webhook answers 200, as a directly stored one is.
- While the spool holds messages, new ones go there too, so a customer's later message cannot overtake an
  earlier spooled one.
- Moving is idempotent: rows go into the queue skipping duplicates (``on conflict do nothing``: by sid and
  signed payload, as ever), then leave the spool, so a mover killed in between, or two movers draining at once,
  store each message once.
- The spool is one file shared by every process, and every mover drains all of it, so messages spooled by a
  process killed with SIGKILL are moved by the next mover that looks (its replacement at start, or any running
  mover within ``MOVE_POLL_S``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bot.inbound.queue import InboundMessage, InboundQueue, inbound_row
from bot.store import Store, StoreBusy

log = logging.getLogger(__name__)

# How long the webhook waits for the database's write lock before spooling: above a free lock's few
# retries, far below Twilio's patience and the 50 ms goal of P5 (README: Capacity).
DIRECT_WRITE_WAIT_S = 0.005
MOVE_POLL_S = 1.0  # a mover looks at the spool this often unprompted: messages a dead process spooled
MOVE_BATCH = 200  # rows per transaction on the queue: one lock taken for many messages, never for long

SPOOL_MIGRATIONS = Migrations("djobea-spool")


@SPOOL_MIGRATIONS()
def m001_spooled(db: Database) -> None:
    # AUTOINCREMENT: ids never come back, so a mover deleting what it moved (id <= the last it read) cannot
    # delete a row spooled after it read.
    db.execute("create table spooled (id integer primary key autoincrement, row text not null)")


@SPOOL_MIGRATIONS()
def m002_refused(db: Database) -> None:
    # A row the queue refuses (a bug, a damaged file) is set aside here, kept for an operator, so that it does not
    # hold back every message spooled after it.
    db.execute("create table refused (id integer primary key, row text not null, error text not null)")


class InboundSpool:
    """The spool file beside ``queue``'s database, and the mover thread that empties it into ``queue``."""

    def __init__(self, path: Path, queue: InboundQueue) -> None:
        self.path = path
        self.queue = queue
        self._store: Store | None = None
        self._open_lock = threading.Lock()
        self._nudge = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_moved: Callable[[], None] = lambda: None

    @classmethod
    def beside(cls, queue: InboundQueue) -> InboundSpool:
        database = queue.store.path
        return cls(database.with_name(database.name + ".spool"), queue)

    @property
    def store(self) -> Store:
        """The spool's file, opened (and created) on first use."""
        with self._open_lock:
            if self._store is None:
                self._store = Store(self.path, SPOOL_MIGRATIONS)
            return self._store

    def accept(self, message: InboundMessage) -> bool:
        """Store ``message`` in the queue if the write lock is free within ``DIRECT_WRITE_WAIT_S`` and nothing is
        spooled before it, else in the spool. Returns True when it was stored in the queue as a new message."""
        if not self.holds_messages():
            with contextlib.suppress(StoreBusy):
                return self.queue.enqueue(message, within_s=DIRECT_WRITE_WAIT_S)[1]
        self.put(message)
        return False

    def depth(self) -> int:
        """How many messages wait in the spool (``/metrics``: ``djobea_inbound_spooled``)."""
        return self.store.db.execute("select count(*) from spooled").fetchone()[0]

    def holds_messages(self) -> bool:
        return self.store.db.execute("select exists (select 1 from spooled)").fetchone()[0] == 1

    def put(self, message: InboundMessage) -> None:
        """Spool ``message`` (committed when this returns) and nudge this process's mover."""
        row = inbound_row(message, self.queue.clock())
        with self.store.immediate(prompt=True) as db:
            db.execute("insert into spooled (row) values (?)", [json.dumps(row, ensure_ascii=False)])
        log.info("database busy: inbound message spooled for the mover")
        self._start_mover()
        self._nudge.set()

    def move(self) -> int:
        """Move every spooled message to the queue, oldest first; returns how many were new to it."""
        moved = 0
        while True:
            rows = self.store.db.execute("select id, row from spooled order by id limit ?", [MOVE_BATCH]).fetchall()
            if not rows:
                return moved
            try:
                moved += self.queue.enqueue_rows([json.loads(row) for _, row in rows])
            except sqlite3.OperationalError:
                raise  # locked, disk full: the whole batch waits for the next round
            except Exception:  # noqa: BLE001 - a row the queue cannot take: find it, and set it aside
                moved += self._move_one_by_one(rows)
            with self.store.immediate(prompt=True) as db:
                db.execute("delete from spooled where id <= ?", [rows[-1][0]])

    def _move_one_by_one(self, rows: list[tuple[int, str]]) -> int:
        """A batch the queue refused: move its rows one at a time, setting aside (``refused``) those it refuses."""
        moved = 0
        for spool_id, row in rows:
            try:
                moved += self.queue.enqueue_rows([json.loads(row)])
            except sqlite3.OperationalError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever makes this row unstorable, the others go on
                log.error("spooled inbound message %s refused by the queue, kept in %s: %s", spool_id, self.path, exc)
                with self.store.immediate(prompt=True) as db:
                    db.execute("insert or replace into refused values (?, ?, ?)", [spool_id, row, str(exc)])
        return moved

    def start(self, on_moved: Callable[[], None]) -> None:
        """Open the spool (one that cannot be created is reported now, by name) and, when it holds messages (a
        process died before moving them), start this process's mover. ``on_moved`` (waking the workers) follows
        every move that stored something. The mover otherwise starts with this process's first spooled message,
        then moves when nudged and every ``MOVE_POLL_S``."""
        self._on_moved = on_moved
        if self.holds_messages():
            self._start_mover()

    def stop(self) -> None:
        """Stop the mover (what it has not moved stays spooled for the next one)."""
        with self._open_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._nudge.set()
            thread.join(5.0)

    def _start_mover(self) -> None:
        with self._open_lock:
            if self._thread is None:
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="inbound-spool", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                moved = self.move() if self.holds_messages() else 0
                if moved:
                    log.info("%d spooled inbound message(s) moved to the queue", moved)
                    self._on_moved()
            except Exception:  # noqa: BLE001 - e.g. the database locked past busy_timeout: the next round retries
                log.exception("moving spooled inbound messages failed; trying again in %g s", MOVE_POLL_S)
            self._nudge.wait(MOVE_POLL_S)
            self._nudge.clear()
