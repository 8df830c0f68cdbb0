"""Run claims of scheduled jobs, in SQLite: a job runs only if its claim succeeds.

Exactly one scheduler should run per deployment (the ``clock`` process, or the one inside
``python -m bot serve``). If two are started by mistake, both fire, but each run first claims the job's
row in a write transaction, and a claim succeeds only when the last run started at least ``min_gap_s``
ago: so a job never runs twice in one interval, whichever process fires first.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from bot.redaction import redact_secrets
from bot.store import Store

ERROR_MAX_CHARS = 300


def this_holder() -> str:
    """How a scheduler names itself in ``scheduler_runs``: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRuns:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time, holder: str | None = None) -> None:
        self.store = store
        self.clock = clock
        self.holder = holder or this_holder()

    def claim(self, job: str, min_gap_s: float) -> bool:
        """Take this run of ``job``; False when another scheduler (or this one) ran it less than min_gap_s ago."""
        with self.store.immediate() as db:
            rows = list(db.query("select * from scheduler_runs where job = ?", [job]))
            now = self.clock()
            last = rows[0]["last_started_at"] if rows else None
            if last is not None and now - last < min_gap_s:
                return False
            runs = (rows[0]["runs"] or 0) + 1 if rows else 1
            db["scheduler_runs"].upsert(
                {"job": job, "last_started_at": now, "holder": self.holder, "runs": runs, "last_error": None},
                pk="job",
            )
            return True

    def finish(self, job: str, error: BaseException | None = None) -> None:
        message = redact_secrets(f"{type(error).__name__}: {error}")[:ERROR_MAX_CHARS] if error else None
        self.store.db.execute(
            "update scheduler_runs set last_finished_at = ?, last_error = ? where job = ?",
            [self.clock(), message, job],
        )
        self.store.db.conn.commit()

    def last_runs(self) -> dict[str, dict]:
        return {row["job"]: row for row in self.store.db.query("select * from scheduler_runs order by job")}
