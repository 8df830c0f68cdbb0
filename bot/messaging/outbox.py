"""``Outbox``: the ``outbound_messages`` table, where a message is recorded before it is sent.

A row is written under an idempotency key (``<inbound id>:reply:<part>``, ``<inbound id>:holding``) in
the same transaction as the conversation turn that produced it, so a reply exists once whatever
crashes later. Its status then moves::

    pending ──(fenced, compare-and-set)──> in_flight ──Twilio 201──> queued ─callbacks─> sent > delivered > read
       ^                                       │ retryable error                              └──> failed / undelivered
       └───────────────────────────────────────┘ refused (63016, 21211, ...) ──> failed, with error_code and reason
    pending ──no Twilio credentials──> sandbox (kept here instead of sent)

``in_flight`` marks the one window where we cannot know alone whether Twilio has the message (it took it,
then we crashed before recording the sid): ``WhatsAppSender`` resolves it by asking Twilio. Every move out
of ``in_flight`` is a compare-and-set on the status and the attempt number that ``mark_in_flight`` returned,
so a sender that stalled past its turn cannot overwrite what happened since (a status callback, a resend).

A Twilio sid confirms at most one row (a partial unique index, migration m108): an in-flight row takes a
sid only if no other row holds it (``confirm_sent``), and a write that would give one sid to two rows
counts as "not confirmed", never as an error.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from bot.logs import current_request_id
from bot.store import Store

PENDING, IN_FLIGHT, SANDBOX, FAILED = "pending", "in_flight", "sandbox", "failed"
UNSETTLED = frozenset({PENDING, IN_FLIGHT})
# Twilio's statuses in the order a message goes through them; a late callback never moves a row back.
STATUS_RANK = {
    "accepted": 1,
    "queued": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "failed": 4,
    "undelivered": 4,
    "delivered": 5,
    "read": 6,
}
Fence = Callable[[sqlite_utils.Database], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    idempotency_key: str
    inbound_id: int | None
    customer_id: str
    to_number: str
    kind: str  # reply | holding
    part: int
    parts: int
    body: str
    status: str
    twilio_sid: str | None
    error_code: int | None
    error_reason: str | None
    attempts: int
    next_attempt_at: float
    send_started_at: float | None
    provider: str | None = None  # the LLM deployment that wrote it (None for fixed texts)
    # An approved template (Twilio Content API) sent instead of ``body`` (which keeps the text it renders to):
    # the only message WhatsApp accepts outside someone's 24-hour window. None: free text.
    content_sid: str | None = None
    content_variables: str | None = None  # JSON object {"1": ..., "2": ...}

    @property
    def settled(self) -> bool:
        return self.status not in UNSETTLED


class Outbox:
    """Reads and moves outbound rows; writes that start a send are fenced by the caller's lease."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def add(
        self,
        db: sqlite_utils.Database,
        *,
        key: str,
        inbound_id: int | None,
        customer_id: str,
        to_number: str,
        kind: str,
        bodies: list[str],
        provider: str | None = None,
    ) -> None:
        """Record the parts of one message inside the caller's transaction; a known key adds nothing. Each part
        carries the request id in scope (``bot.logs``), which ties it to the log lines and llm_calls of its cause."""
        now = self.clock()
        for index, body in enumerate(bodies, start=1):
            part_key = f"{key}:{index}" if len(bodies) > 1 else key
            db.execute(
                "insert or ignore into outbound_messages (idempotency_key, inbound_id, customer_id, to_number, kind,"
                " part, parts, body, provider, status, attempts, next_attempt_at, created_at, trace_id)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
                [
                    part_key,
                    inbound_id,
                    customer_id,
                    to_number,
                    kind,
                    index,
                    len(bodies),
                    body,
                    provider,
                    PENDING,
                    now,
                    current_request_id(),
                ],  # fmt: skip
            )

    def for_inbound(self, inbound_id: int, kind: str | None = None) -> list[OutboundMessage]:
        """The rows produced for one inbound message, in sending order (holding first, then reply parts)."""
        sql = "select * from outbound_messages where inbound_id = ?"
        params: list[object] = [inbound_id]
        if kind:
            sql += " and kind = ?"
            params.append(kind)
        return [_row(r) for r in self.store.db.query(sql + " order by id", params)]

    def get(self, outbound_id: int) -> OutboundMessage | None:
        rows = list(self.store.db.query("select * from outbound_messages where id = ?", [outbound_id]))
        return _row(rows[0]) if rows else None

    def mark_in_flight(self, outbound_id: int, fence: Fence) -> int | None:
        """pending -> in_flight, only if the fence passes and nobody else did it first.

        Returns the attempt number the later ``mark_*`` of this send must give, or None when not moved.
        """
        with self.store.immediate() as db:
            fence(db)
            cursor = db.execute(
                "update outbound_messages set status = ?, attempts = attempts + 1, send_started_at = ?"
                " where id = ? and status = ?",
                [IN_FLIGHT, self.clock(), outbound_id, PENDING],
            )
            if cursor.rowcount != 1:
                return None
            return int(db.execute("select attempts from outbound_messages where id = ?", [outbound_id]).fetchone()[0])

    def mark_accepted(self, outbound_id: int, attempt: int, sid: str, status: str) -> bool:
        """in_flight (this attempt) -> Twilio's status; False when the row has moved on without us."""
        now = self.clock()
        return self._from_in_flight(outbound_id, attempt, status=status, twilio_sid=sid, sent_at=now, status_at=now)

    def confirm_sent(self, outbound_id: int, attempt: int, sids: list[str], status: str = "queued") -> str | None:
        """in_flight (this attempt) -> ``status``, holding the first of ``sids`` that no other row holds.

        ``sids`` are Twilio's candidates for a send whose answer was lost (``TwilioGateway.find_sent``). An
        earlier identical reply's message is among them but already held by its own row, so it is skipped; the
        choice and the write share one transaction, so two workers resolving look-alike rows take different
        sids. Returns the sid taken, or None (nothing free, or the row moved on): then the send is not confirmed.
        """
        if not sids:
            return None
        held_sql = f"select twilio_sid from outbound_messages where twilio_sid in ({', '.join('?' for _ in sids)})"
        try:
            with self.store.immediate() as db:
                held = {held_sid for (held_sid,) in db.execute(held_sql, sids)}
                free = next((sid for sid in sids if sid not in held), None)
                if free is None:
                    return None
                now = self.clock()
                moved = self._move_from_in_flight(
                    db, outbound_id, attempt, status=status, twilio_sid=free, sent_at=now, status_at=now
                )
                return free if moved else None
        except sqlite3.IntegrityError:  # the index's backstop: another row holds it after all
            log.warning("outbound %s not confirmed: Twilio sid already held by another row", outbound_id)
            return None

    def mark_pending(
        self, outbound_id: int, attempt: int, until: float, reason: str | None, code: int | None = None
    ) -> bool:
        """Back to pending (a retryable failure, or an in-flight send Twilio turned out not to have)."""
        return self._from_in_flight(
            outbound_id, attempt, status=PENDING, next_attempt_at=until, error_reason=reason, error_code=code
        )

    def mark_failed(self, outbound_id: int, attempt: int, code: int | None, reason: str) -> bool:
        return self._from_in_flight(
            outbound_id, attempt, status=FAILED, error_code=code, error_reason=reason, status_at=self.clock()
        )

    def supersede(self, db: sqlite_utils.Database, inbound_id: int, kind: str, reason: str) -> None:
        """Inside the caller's transaction: drop rows of ``kind`` for ``inbound_id`` not yet handed to Twilio.

        A row still ``in_flight`` may be at Twilio: the sender settles it (``WhatsAppSender.settle_dropped``).
        """
        db.execute(
            "update outbound_messages set status = ?, error_reason = ?, status_at = ?"
            " where inbound_id = ? and kind = ? and status = ?",
            [FAILED, reason, self.clock(), inbound_id, kind, PENDING],
        )

    def mark_sandbox(self, outbound_id: int, fence: Fence) -> None:
        with self.store.immediate() as db:
            fence(db)
            db.execute(
                "update outbound_messages set status = ?, sent_at = ?, status_at = ? where id = ? and status = ?",
                [SANDBOX, self.clock(), self.clock(), outbound_id, PENDING],
            )

    def record_status(
        self, sid: str, status: str, error_code: int | None, reason: str | None, outbound_id: int | None = None
    ) -> bool:
        """Apply a delivery status callback; returns False when no row matches ``sid`` (or ``outbound_id``).

        ``outbound_id`` (carried in the callback URL) finds a row whose sid we never recorded because we
        crashed right after Twilio accepted it. A sid another row holds is applied to that row, never given
        to a second one; should the unique index refuse the write anyway, the callback is not recorded
        (False) rather than failing, so Twilio is not asked to post it again and again.
        """
        try:
            return self._record_status(sid, status.lower(), error_code, reason, outbound_id)
        except sqlite3.IntegrityError:
            log.warning("status %s of %s not recorded: its sid is held by another outbound row", status, sid)
            return False

    def _record_status(
        self, sid: str, status: str, error_code: int | None, reason: str | None, outbound_id: int | None
    ) -> bool:
        with self.store.immediate() as db:
            row = db.execute("select id, status from outbound_messages where twilio_sid = ?", [sid]).fetchone()
            if row is None and outbound_id is not None:
                row = db.execute(
                    "select id, status from outbound_messages where id = ? and (twilio_sid is null or twilio_sid = ?)",
                    [outbound_id, sid],
                ).fetchone()
            if row is None:
                return False
            db["message_status_events"].insert(
                {
                    "at": self.clock(),
                    "outbound_id": row[0],
                    "twilio_sid": sid,
                    "status": status,
                    "error_code": error_code,
                    "error_reason": reason,
                }
            )
            current = STATUS_RANK.get(row[1], 0)
            if STATUS_RANK.get(status, 0) >= current:
                db.execute(
                    "update outbound_messages set status = ?, twilio_sid = ?, status_at = ?,"
                    " error_code = coalesce(?, error_code), error_reason = coalesce(?, error_reason),"
                    " sent_at = coalesce(sent_at, ?) where id = ?",
                    [status, sid, self.clock(), error_code, reason, self.clock(), row[0]],
                )
        return True

    def _from_in_flight(self, outbound_id: int, attempt: int, **values: object) -> bool:
        try:
            with self.store.immediate() as db:
                return self._move_from_in_flight(db, outbound_id, attempt, **values)
        except sqlite3.IntegrityError:
            # Its sid went to another row (a lost-answer lookup took it while this call was still out):
            # left in_flight, to be looked up again, which re-sends it if nothing else of Twilio's is free.
            log.warning("outbound %s not moved: its Twilio sid is already held by another row", outbound_id)
            return False

    @staticmethod
    def _move_from_in_flight(db: sqlite_utils.Database, outbound_id: int, attempt: int, **values: object) -> bool:
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = db.execute(
            f"update outbound_messages set {assignments} where id = ? and status = ? and attempts = ?",
            [*values.values(), outbound_id, IN_FLIGHT, attempt],
        )
        return cursor.rowcount == 1


def _row(row: dict) -> OutboundMessage:
    return OutboundMessage(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        inbound_id=row["inbound_id"],
        customer_id=row["customer_id"],
        to_number=row["to_number"],
        kind=row["kind"],
        part=row["part"],
        parts=row["parts"],
        body=row["body"],
        status=row["status"],
        twilio_sid=row["twilio_sid"],
        error_code=row["error_code"],
        error_reason=row["error_reason"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"] or 0.0,
        send_started_at=row["send_started_at"],
        provider=row["provider"],
        content_sid=row.get("content_sid"),
        content_variables=row.get("content_variables"),
    )
