"""``InboundQueue``: the ``inbound_messages`` table used as a work queue shared by every process.

A message is written once (``enqueue``, deduplicated by ``message_sid`` and by ``payload_digest``, the digest of
what Twilio signed, so a signed payload re-cut into another ``MessageSid`` is not a new message) and then moves::

    pending ──claim (lease)──> pending + leased ──complete──> done
       ^                            │ defer (backoff, lease dropped)
       └────────────────────────────┘ lease expires (worker killed) -> claimable again
    pending ──finish──> expired (24-hour window closed) | failed (gave up, with the reason)

A message is given up (``failed``) when retrying cannot help: every provider refused it for what it says,
it raised an unexpected error ``INBOUND_MAX_ERRORS`` times, or it was still unanswered a whole reply window
after its own receipt. Otherwise one bad message would hold back every later message of its customer.

Claims run in ``BEGIN IMMEDIATE`` so two workers never take the same row; only the oldest pending
message of a customer is claimable, so each customer's messages are answered in order. Each claim gets
a fresh ``lease_token``: every write made on behalf of a claim checks it (a fencing token), so a worker
that stalled past its lease cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.store import Store

log = logging.getLogger(__name__)

PENDING, DONE, EXPIRED, FAILED = "pending", "done", "expired", "failed"
ERROR_MAX_CHARS = 500


class LeaseLost(Exception):
    """Raised when a worker writes for a claim whose lease another worker has since taken (or that is done).

    The worker drops what it computed; the new holder redoes it, so the customer still gets one reply.
    """


@dataclass(frozen=True)
class InboundMessage:
    """A customer message as the webhook (or the chat API) hands it to the queue."""

    message_sid: str
    customer_id: str
    body: str
    channel: str = "whatsapp"
    from_number: str | None = None
    to_number: str | None = None
    profile_name: str | None = None
    media: list[dict[str, str]] = field(default_factory=list)  # [{"url", "content_type"}]
    latitude: float | None = None
    longitude: float | None = None
    form: dict[str, Any] = field(default_factory=dict)
    payload_digest: str | None = None  # sha256 of what Twilio signed; None for chat and CLI messages


@dataclass(frozen=True)
class ClaimedMessage:
    """A stored message together with the lease that lets one worker process it."""

    id: int
    lease_token: str
    attempts: int  # including this claim
    received_at: float
    message: InboundMessage
    errors: int = 0  # unexpected errors in earlier claims
    give_up_reason: str | None = None  # set when an earlier claim gave up and recorded an apology to send


class InboundQueue:
    """Enqueue, claim, complete and defer inbound messages; every method is safe across processes."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def enqueue(self, message: InboundMessage, within_s: float | None = None) -> tuple[int, bool]:
        """Store ``message``; returns (row id, created).

        A second delivery of the same sid, or of the same signed payload under another sid, changes nothing.
        ``within_s``: raise ``StoreBusy`` (nothing stored) when the write lock is not ours within that many seconds.
        """
        row = inbound_row(message, self.clock())
        # One short transaction, durable when this returns; prompt, since Twilio holds the webhook open meanwhile.
        with self.store.immediate(prompt=True, within_s=within_s) as db:
            cursor = _insert(db, row)
        if cursor.rowcount == 1:
            return int(cursor.lastrowid), True
        # "= null" never matches, so a message without a digest is found by its sid alone.
        existing_id, existing_sid = db.execute(
            "select id, message_sid from inbound_messages where message_sid = ? or payload_digest = ?"
            " order by id limit 1",
            [message.message_sid, message.payload_digest],
        ).fetchone()
        if existing_sid != message.message_sid:
            log.warning("signed payload of %s replayed as %s: not stored again", existing_sid, message.message_sid[:80])
        return int(existing_id), False

    def enqueue_rows(self, rows: list[dict[str, Any]]) -> int:
        """Store rows made by ``inbound_row`` (the spool's), in their order, in one transaction; returns how many
        were new (a redelivery, or a message stored directly meanwhile, is ignored as in ``enqueue``)."""
        with self.store.immediate(prompt=True) as db:
            return sum(_insert(db, row).rowcount for row in rows)

    def claim(self, owner: str, lease_s: float, customer_id: str | None = None) -> ClaimedMessage | None:
        """Take the oldest due message whose customer has nothing older pending, or None.

        ``customer_id`` limits the claim to one customer (the terminal chat answers only its own messages).
        """
        only = "and i.customer_id = :customer" if customer_id else ""
        claimable = f"""
            select * from inbound_messages i
            where i.status = 'pending' and i.next_attempt_at <= :now
              and (i.lease_until is null or i.lease_until <= :now) {only}
              and not exists (
                select 1 from inbound_messages e
                where e.customer_id = i.customer_id and e.status = 'pending' and e.id < i.id
              )
            order by i.id limit 1
            """
        # Looked for first without the write lock (a read in WAL waits for nobody): idle workers polling, or woken
        # for a message another took, must not queue for the lock the webhooks need to store messages.
        parameters = {"now": self.clock(), "customer": customer_id}
        if self.store.db.execute(claimable, parameters).fetchone() is None:
            return None
        with self.store.immediate() as db:
            now = self.clock()
            while True:
                cursor = db.execute(claimable, {"now": now, "customer": customer_id})
                row = cursor.fetchone()
                if row is None:
                    return None
                record = dict(zip([c[0] for c in cursor.description], row, strict=True))
                try:
                    message = _message_from_row(record)
                    break
                except (ValueError, TypeError) as exc:
                    # A row no worker can read would be the oldest claimable one for ever, holding back everyone.
                    db.execute(
                        "update inbound_messages set status = ?, done_at = ?, last_error = ? where id = ?",
                        [FAILED, now, f"unreadable stored message: {exc}"[:ERROR_MAX_CHARS], record["id"]],
                    )
            token = secrets.token_hex(8)
            db.execute(
                "update inbound_messages set lease_owner = ?, lease_token = ?, lease_until = ?, attempts = attempts + 1"
                " where id = ?",
                [owner, token, now + lease_s, record["id"]],
            )
        return ClaimedMessage(
            id=record["id"],
            lease_token=token,
            attempts=record["attempts"] + 1,
            received_at=record["received_at"],
            message=message,
            errors=record["errors"] or 0,
            give_up_reason=record["give_up_reason"],
        )

    def check_lease(self, db: sqlite_utils.Database, claim: ClaimedMessage, extend_s: float | None = None) -> None:
        """Inside the caller's write transaction: raise ``LeaseLost`` unless ``claim`` still holds the row.

        ``extend_s`` renews the lease from now, for a worker about to start a slow step (sending).
        """
        row = db.execute("select status, lease_token from inbound_messages where id = ?", [claim.id]).fetchone()
        if row is None or row[0] != PENDING or row[1] != claim.lease_token:
            raise LeaseLost(f"inbound message {claim.id} is no longer leased to this worker")
        if extend_s is not None:
            db.execute("update inbound_messages set lease_until = ? where id = ?", [self.clock() + extend_s, claim.id])

    def renew_lease(self, claim: ClaimedMessage, lease_s: float) -> None:
        """Push ``claim``'s lease to ``lease_s`` from now (a worker's heartbeat); ``LeaseLost`` if it is not ours."""
        with self.store.immediate() as db:
            self.check_lease(db, claim, extend_s=lease_s)

    def complete(self, claim: ClaimedMessage) -> None:
        """The message has had its reply: done, lease dropped."""
        self._close(claim, DONE, None)

    def finish(self, claim: ClaimedMessage, status: str, reason: str) -> None:
        """Stop working on the message for good (``expired`` or ``failed``), keeping why."""
        if status not in (EXPIRED, FAILED):
            raise ValueError(f"finish() takes expired or failed, not {status!r}")
        self._close(claim, status, reason)

    def defer(self, claim: ClaimedMessage, until: float, reason: str, error: bool = False) -> None:
        """Give the message back, due again at ``until`` (epoch seconds), keeping why.

        ``error``: the claim ended in an unexpected exception, counted towards giving the message up.
        """
        with self.store.immediate() as db:
            self.check_lease(db, claim)
            db.execute(
                "update inbound_messages set lease_owner = null, lease_token = null, lease_until = null,"
                " next_attempt_at = ?, last_error = ?, errors = errors + ? where id = ?",
                [until, reason[:ERROR_MAX_CHARS], int(error), claim.id],
            )

    def give_up(self, db: sqlite_utils.Database, claim: ClaimedMessage, reason: str, errors: int | None = None) -> None:
        """Inside the caller's fenced transaction: record that the message is given up and why.

        It stays pending until the apology recorded in the same transaction is settled, then ``finish`` marks it
        failed; a worker that takes it over in between sends the apology instead of asking the model again.
        """
        db.execute(
            "update inbound_messages set give_up_reason = ?, last_error = ?, errors = coalesce(?, errors) where id = ?",
            [reason[:ERROR_MAX_CHARS], reason[:ERROR_MAX_CHARS], errors, claim.id],
        )

    def _close(self, claim: ClaimedMessage, status: str, reason: str | None) -> None:
        with self.store.immediate() as db:
            self.check_lease(db, claim)
            db.execute(
                "update inbound_messages set status = ?, lease_owner = null, lease_token = null, lease_until = null,"
                " done_at = ?, last_error = coalesce(?, last_error) where id = ?",
                [status, self.clock(), reason[:ERROR_MAX_CHARS] if reason else None, claim.id],
            )

    def next_due_at(self) -> float | None:
        """When the earliest pending message becomes claimable (None: nothing pending); lets idle workers wait.

        Only the oldest pending message of each customer counts, as in ``claim``: a message waiting behind one
        another worker holds becomes claimable when that one is done (its worker then takes the next itself),
        not when its own ``next_attempt_at`` passes, so idle workers must not poll for it meanwhile.
        """
        row = self.store.db.execute(
            """
            select min(max(i.next_attempt_at, coalesce(i.lease_until, 0))) from inbound_messages i
            where i.status = 'pending' and not exists (
              select 1 from inbound_messages e
              where e.customer_id = i.customer_id and e.status = 'pending' and e.id < i.id
            )
            """
        ).fetchone()
        return row[0]

    def counts(self) -> dict[str, int]:
        """Messages per status, for health checks and tests."""
        return {
            status: n
            for status, n in self.store.db.execute("select status, count(*) from inbound_messages group by status")
        }


def inbound_row(message: InboundMessage, received_at: float) -> dict[str, Any]:
    """``message`` as its ``inbound_messages`` row (JSON-serialisable: the spool keeps it as it is)."""
    return {
        "message_sid": message.message_sid,
        "channel": message.channel,
        "customer_id": message.customer_id,
        "from_number": message.from_number,
        "to_number": message.to_number,
        "body": message.body,
        "profile_name": message.profile_name,
        "media": json.dumps(message.media),
        "latitude": message.latitude,
        "longitude": message.longitude,
        "form": json.dumps(message.form, ensure_ascii=False),
        "received_at": received_at,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": 0.0,
        "payload_digest": message.payload_digest,
    }


def _insert(db: sqlite_utils.Database, row: dict[str, Any]) -> sqlite3.Cursor:
    # Only a duplicate (same sid, or same signed payload) is skipped: "insert or ignore" would also drop, without a
    # word, a row that breaks NOT NULL.
    return db.conn.execute(
        f"insert into inbound_messages ({', '.join(row)}) values ({', '.join('?' * len(row))}) on conflict do nothing",
        list(row.values()),
    )


def release_expired_leases(store: Store, now: float | None = None) -> int:
    """Drop leases whose time is up (their worker died or stalled); returns how many were released.

    Claims already ignore expired leases, so this is not needed for correctness: it is the scheduler's
    "resume stuck inbound messages" job, making them due at once and visible as such in the admin views.
    """
    now = time.time() if now is None else now
    with store.immediate() as db:
        cursor = db.execute(
            "update inbound_messages set lease_owner = null, lease_token = null, lease_until = null,"
            " next_attempt_at = min(next_attempt_at, ?), last_error = coalesce(last_error, 'lease expired')"
            " where status = 'pending' and lease_until is not null and lease_until <= ?",
            [now, now],
        )
        return cursor.rowcount


def _message_from_row(row: dict[str, Any]) -> InboundMessage:
    return InboundMessage(
        message_sid=row["message_sid"],
        customer_id=row["customer_id"],
        body=row["body"] or "",
        channel=row["channel"] or "whatsapp",
        from_number=row["from_number"],
        to_number=row["to_number"],
        profile_name=row["profile_name"],
        media=json.loads(row["media"] or "[]"),
        latitude=row["latitude"],
        longitude=row["longitude"],
        form=json.loads(row["form"] or "{}"),
        payload_digest=row.get("payload_digest"),
    )
