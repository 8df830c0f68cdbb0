"""The shared SQLite store: WAL, migrations applied exactly once even when workers start together, and a
path that cannot hold a database refused with an error naming it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import Store, StoreOpenError
from bot.store import migrations as migrations_module
from bot.store.migrations import MIGRATIONS

REPO = Path(__file__).resolve().parents[1]


def test_store_is_wal_and_fully_migrated(store: Store) -> None:
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert MIGRATIONS.pending(store.db) == []
    assert {"llm_calls", "provider_health", "provider_events"} <= set(store.db.table_names())


def test_workers_starting_together_migrate_once(tmp_path: Path) -> None:
    db_path = tmp_path / "fresh.db"
    code = f"from bot.store import Store; Store({str(db_path)!r})"
    workers = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE) for _ in range(4)]
    errors = [w.communicate(timeout=60)[1].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], errors
    applied = [m.name for m in MIGRATIONS.applied(Store(db_path).db)]
    defined = [name for name in vars(migrations_module) if re.fullmatch(r"m\d{3}_\w+", name)]
    assert len(applied) == len(set(applied)) == len(defined)


def test_a_path_that_cannot_hold_a_database_is_refused_naming_it(tmp_path: Path) -> None:
    regular_file = tmp_path / "notes.txt"
    regular_file.write_text("hello\n", encoding="utf-8")
    cases = {
        tmp_path: "is a directory",
        regular_file / "bot.db": f"{regular_file} is not a directory",
        regular_file / "deeper" / "bot.db": f"{regular_file} is not a directory",
        regular_file: "file is not a database",
    }
    for path, reason in cases.items():
        with pytest.raises(StoreOpenError) as raised:
            Store(path)
        assert str(raised.value).startswith(f"cannot open the database {path}: ") and reason in str(raised.value)
    assert regular_file.read_text(encoding="utf-8") == "hello\n"  # what was there is left as it was


def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path) -> None:
    """A COMMIT refused (here: a deferred foreign-key violation) must not leave the connection mid-transaction."""
    import sqlite3

    store = Store(tmp_path / "bot.db")
    store.db.execute("create table parent (id integer primary key)")
    store.db.execute(
        "create table child (id integer primary key, parent_id integer"
        " references parent(id) deferrable initially deferred)"
    )
    with pytest.raises(sqlite3.IntegrityError), store.immediate() as db:
        db.execute("insert into child (parent_id) values (42)")  # checked only at COMMIT
    assert not store.db.conn.in_transaction
    with store.immediate() as db:  # the next transaction starts cleanly
        db.execute("insert into parent (id) values (1)")
    assert store.db.execute("select count(*) from parent").fetchone()[0] == 1


def test_a_thread_first_used_while_the_file_was_read_only_writes_again_once_it_is_writable(tmp_path) -> None:
    """SQLite opens a file it cannot write read-only and the connection stays so: a thread that met an outage
    (disk made immutable, read-only remount) must not stay unable to write after it ends."""
    import shutil
    import sqlite3
    import threading

    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    store = Store(tmp_path / "bot.db")
    store.db.execute("create table notes (id integer primary key, body text)")
    files = [store.path, store.path.with_name("bot.db-wal")]
    if subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True).returncode != 0:
        pytest.skip("chattr cannot make the database immutable here (needs root on a supporting filesystem)")
    outcomes: list[str] = []
    made_writable = threading.Event()
    try:

        def thread_that_meets_the_outage() -> None:
            for _ in range(2):
                try:
                    with store.immediate() as db:
                        db.execute("insert into notes (body) values ('x')")
                    outcomes.append("written")
                except sqlite3.OperationalError:
                    outcomes.append("refused")
                    subprocess.run(["chattr", "-i", *map(str, files)], check=True)
                    made_writable.set()

        worker = threading.Thread(target=thread_that_meets_the_outage)
        worker.start()
        worker.join(timeout=30)
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=False)
    assert made_writable.is_set()
    assert outcomes == ["refused", "written"]


def open_descriptors(path: Path) -> list[str]:
    """What this process holds open of the database file, its WAL and its shared memory."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(path)):
            held.append(target)
    return held


def test_the_connection_of_a_thread_that_ended_is_closed(tmp_path: Path) -> None:
    """Pools churn threads: each one's connection must close with it, not wait for the garbage collector."""
    import threading

    store = Store(tmp_path / "bot.db")
    store.db.execute("create table notes (id integer primary key, body text)")
    long_lived_ready, long_lived_go = threading.Event(), threading.Event()
    long_lived_wrote: list[int] = []

    def long_lived() -> None:  # a thread that outlives the churn keeps a working connection
        store.db.execute("select count(*) from notes").fetchone()
        long_lived_ready.set()
        long_lived_go.wait(30)
        with store.immediate() as db:
            long_lived_wrote.append(db.execute("insert into notes (body) values ('late')").lastrowid)

    def short_lived() -> None:
        with store.immediate() as db:
            db.execute("insert into notes (body) values ('x')")

    survivor = threading.Thread(target=long_lived)
    survivor.start()
    assert long_lived_ready.wait(30)
    for _ in range(5):
        churn = [threading.Thread(target=short_lived) for _ in range(10)]
        for thread in churn:
            thread.start()
        for thread in churn:
            thread.join(timeout=30)
    long_lived_go.set()
    survivor.join(timeout=30)

    assert long_lived_wrote and store.db.execute("select count(*) from notes").fetchone()[0] == 51
    store.close()  # this thread's: every other thread has ended, so nothing of the file may stay open
    assert open_descriptors(store.path) == []


def test_a_prompt_writer_waits_for_the_lock_then_writes(tmp_path: Path) -> None:
    """``immediate(prompt=True)`` (the webhook's) retries the write lock itself instead of SQLite's busy handler:
    it still waits while another process writes, and writes once the lock is free."""
    import sqlite3
    import threading

    store = Store(tmp_path / "bot.db")
    store.db.execute("create table notes (body text)")
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    done = threading.Event()
    failures: list[BaseException] = []
    busy_timeouts: list[int] = []

    def write() -> None:
        try:
            with store.immediate(prompt=True) as db:
                db.execute("insert into notes values ('stored')")
            busy_timeouts.append(store.db.execute("pragma busy_timeout").fetchone()[0])
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.2)  # it cannot write while the lock is held
    other.execute("COMMIT")
    writer.join(timeout=10)

    assert failures == [] and done.is_set()
    assert [row[0] for row in store.db.execute("select body from notes")] == ["stored"]
    assert busy_timeouts == [30_000]  # the connection's busy timeout is back for its ordinary writes
    other.close()


def test_a_prompt_writer_with_a_limit_gives_up_on_a_busy_lock_having_written_nothing(tmp_path: Path) -> None:
    """``within_s`` (the webhook's, before it spools): ``StoreBusy`` once the lock stayed busy that long."""
    import sqlite3

    from bot.store import StoreBusy

    store = Store(tmp_path / "bot.db")
    store.db.execute("create table notes (body text)")
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    with pytest.raises(StoreBusy, match="busy for 0.01 s"), store.immediate(prompt=True, within_s=0.01) as db:
        db.execute("insert into notes values ('never')")
    other.execute("COMMIT")

    with store.immediate(prompt=True, within_s=0.01) as db:  # the same connection writes once the lock is free
        db.execute("insert into notes values ('stored')")
    assert [row[0] for row in store.db.execute("select body from notes")] == ["stored"]
    assert store.db.execute("pragma busy_timeout").fetchone()[0] == 30_000
    other.close()
