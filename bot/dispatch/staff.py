"""``StaffChannel``: what staff are told about requests, each fact exactly once whatever the number of processes.

An announcement is a row of ``staff_announcements`` under a unique key (``new_request:<id>``,
``no_artisan:<id>``), inserted in the transaction that makes the fact true (the dispatch start, the last batch
timing out), so it exists once or not at all. Its WhatsApp copy to ADMIN_WHATSAPP_NUMBER is an outbox row
under the same key, sent like any other; its webhook copy (ALERT_WEBHOOK_URL, JSON like admin alerts, with a
``text`` field for Slack-style hooks) is delivered under a short claim, so two processes never post it together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import sqlite_utils

from bot.messaging.outbox import Outbox
from bot.redaction import redact_secrets
from bot.store import Store

log = logging.getLogger(__name__)

STAFF_KIND = "dispatch_staff"
CLAIM_S = 60.0
MAX_ATTEMPTS = 5
RETRY_BACKOFF_S = 30.0
WebhookPost = Callable[[dict[str, Any]], None]  # raises when the hook did not take it


def post_json(url: str, timeout_s: float = 5.0) -> WebhookPost:
    """A ``WebhookPost`` to ``url`` (raises on a non-2xx answer)."""

    def post(payload: dict[str, Any]) -> None:
        response = httpx.post(url, json=payload, timeout=timeout_s)
        response.raise_for_status()

    return post


class StaffChannel:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        whatsapp_number: str | None = None,
        webhook: WebhookPost | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.whatsapp_number = whatsapp_number
        self.webhook = webhook
        self.clock = clock

    def announce(self, db: sqlite_utils.Database, kind: str, request_id: int, text: str) -> bool:
        """Inside the caller's transaction: record the announcement (and its WhatsApp copy) unless it exists."""
        key = f"{kind}:{request_id}"
        cursor = db.execute(
            "insert or ignore into staff_announcements (dedupe_key, request_id, kind, text, at, webhook, attempts)"
            " values (?, ?, ?, ?, ?, ?, 0)",
            [key, request_id, kind, text, self.clock(), "pending" if self.webhook else "none"],
        )
        if cursor.rowcount != 1:
            return False
        if self.whatsapp_number:
            self.outbox.add(
                db,
                key=f"dispatch:staff:{key}",
                inbound_id=None,
                customer_id=self.whatsapp_number,
                to_number=self.whatsapp_number,
                kind=STAFF_KIND,
                bodies=[text],
            )
            db.execute(
                "update outbound_messages set request_id = ? where idempotency_key = ?",
                [request_id, f"dispatch:staff:{key}"],
            )
        return True

    def deliver_webhooks(self) -> int:
        """Post pending announcements to the webhook (each under a claim); returns how many were delivered."""
        if self.webhook is None:
            return 0
        delivered = 0
        now = self.clock()
        pending = list(
            self.store.db.query(
                "select * from staff_announcements where webhook = 'pending'"
                " and (claimed_until is null or claimed_until <= ?) order by id limit 50",
                [now],
            )
        )
        for row in pending:
            if not self._claim(row["id"]):
                continue  # another process has it
            attempts = (row["attempts"] or 0) + 1
            try:
                self.webhook(
                    {
                        "text": row["text"],
                        "kind": row["kind"],
                        "request_id": row["request_id"],
                        "announcement_id": row["id"],
                        "at": row["at"],
                    }
                )
            except Exception as exc:  # noqa: BLE001 - the hook's failure is recorded and retried
                error = redact_secrets(f"{type(exc).__name__}: {exc}")[:200]
                state = "failed" if attempts >= MAX_ATTEMPTS else "pending"
                retry_at = None if state == "failed" else self.clock() + RETRY_BACKOFF_S * attempts
                self._settle(row["id"], state, attempts, retry_at, error)
                log.warning("staff announcement %s not delivered (%s): %s", row["id"], state, error)
                continue
            self._settle(row["id"], "delivered", attempts, None, None)
            delivered += 1
        return delivered

    def recent(self, request_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if request_id is None:
            return list(self.store.db.query("select * from staff_announcements order by id desc limit ?", [limit]))
        return list(
            self.store.db.query("select * from staff_announcements where request_id = ? order by id", [request_id])
        )

    def _claim(self, announcement_id: int) -> bool:
        now = self.clock()
        with self.store.immediate() as db:
            return (
                db.execute(
                    "update staff_announcements set claimed_until = ? where id = ? and webhook = 'pending'"
                    " and (claimed_until is null or claimed_until <= ?)",
                    [now + CLAIM_S, announcement_id, now],
                ).rowcount
                == 1
            )

    def _settle(
        self, announcement_id: int, state: str, attempts: int, retry_at: float | None, error: str | None
    ) -> None:
        with self.store.immediate() as db:
            db.execute(
                "update staff_announcements set webhook = ?, attempts = ?, claimed_until = ?, last_error = ?,"
                " delivered_at = ? where id = ?",
                [state, attempts, retry_at, error, self.clock() if state == "delivered" else None, announcement_id],
            )
