"""``ConversationHistory``: conversations, their turns and their service requests in SQLite.

Reads happen before the model is asked; the writes of a turn (both messages, the request) happen in
the caller's transaction, so a turn is stored whole or not at all. Nothing here commits a transaction
it did not open: a nested ``with conn:`` would commit the caller's half-written turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.store import Store

# Messages read back for a prompt (older ones are summarised by the request itself); a PromptBudget then
# keeps the most recent of them that fit its token budget.
HISTORY_TURNS = 20
OPEN_STATUSES = ("collecting", "awaiting_confirmation")
REQUEST_FIELDS = ("service_type", "location", "description", "urgency")


@dataclass(frozen=True)
class Conversation:
    id: int
    customer_id: str
    channel: str
    language: str | None
    profile_name: str | None


@dataclass(frozen=True)
class HistoryMessage:
    role: str  # user | assistant
    content: str


@dataclass
class RequestDraft:
    """The open service request of a conversation (``id`` None until first stored)."""

    id: int | None = None
    status: str = "collecting"
    service_type: str | None = None
    location: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    description: str | None = None
    urgency: str | None = None
    media: list[dict[str, str]] = field(default_factory=list)

    def known(self) -> dict[str, str]:
        return {name: value for name in REQUEST_FIELDS if (value := getattr(self, name))}

    def missing(self) -> list[str]:
        return [name for name in REQUEST_FIELDS if not getattr(self, name)]

    @property
    def started(self) -> bool:
        return bool(self.known() or self.media)


class ConversationHistory:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def ensure(
        self,
        customer_id: str,
        channel: str,
        profile_name: str | None = None,
        db: sqlite_utils.Database | None = None,
    ) -> Conversation:
        """The customer's conversation, created on first contact (idempotent across processes).

        ``db``: the caller's open transaction, which the row then joins; without it, one of its own.
        """
        if db is None:
            with self.store.immediate() as own:
                return self.ensure(customer_id, channel, profile_name, own)
        now = self.clock()
        db.execute(
            "insert or ignore into conversations (customer_id, channel, profile_name, created_at, updated_at)"
            " values (?, ?, ?, ?, ?)",
            [customer_id, channel, profile_name, now, now],
        )
        return self.find(customer_id)  # type: ignore[return-value]

    def find(self, customer_id: str) -> Conversation | None:
        rows = list(self.store.db.query("select * from conversations where customer_id = ?", [customer_id]))
        if not rows:
            return None
        row = rows[0]
        return Conversation(row["id"], row["customer_id"], row["channel"], row["language"], row["profile_name"])

    def recent(self, conversation_id: int, limit: int = HISTORY_TURNS) -> list[HistoryMessage]:
        """The latest turns, whole as stored: kind ``message`` only (``holding`` replies and ``refused`` messages,
        which every provider turned down for what they say, stay out of prompts)."""
        rows = self.store.db.execute(
            "select role, content from (select id, role, content from conversation_messages"
            " where conversation_id = ? and kind = 'message' order by id desc limit ?) order by id",
            [conversation_id, limit],
        ).fetchall()
        return [HistoryMessage(role, content) for role, content in rows]

    def open_request(self, conversation_id: int) -> RequestDraft:
        rows = list(
            self.store.db.query(
                "select * from service_requests where conversation_id = ? and status in (?, ?)"
                " order by id desc limit 1",
                [conversation_id, *OPEN_STATUSES],
            )
        )
        if not rows:
            return RequestDraft()
        row = rows[0]
        return RequestDraft(
            id=row["id"],
            status=row["status"],
            service_type=row["service_type"],
            location=row["location"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            description=row["description"],
            urgency=row["urgency"],
            media=json.loads(row["media"] or "[]"),
        )

    def requests(self, customer_id: str) -> list[dict[str, Any]]:
        """Every service request of a customer, oldest first (for the API, CLI and tests)."""
        return list(
            self.store.db.query("select * from service_requests where customer_id = ? order by id", [customer_id])
        )

    def append(
        self,
        db: sqlite_utils.Database,
        conversation_id: int,
        role: str,
        content: str,
        *,
        inbound_id: int | None = None,
        provider: str | None = None,
        kind: str = "message",
    ) -> None:
        db["conversation_messages"].insert(
            {
                "conversation_id": conversation_id,
                "role": role,
                "content": content,
                "at": self.clock(),
                "inbound_id": inbound_id,
                "provider": provider,
                "kind": kind,
            }
        )

    def touch(self, db: sqlite_utils.Database, conversation_id: int, language: str) -> None:
        db.execute(
            "update conversations set language = ?, updated_at = ? where id = ?",
            [language, self.clock(), conversation_id],
        )

    def save_request(
        self, db: sqlite_utils.Database, conversation_id: int, customer_id: str, draft: RequestDraft, language: str
    ) -> int:
        now = self.clock()
        values = {
            "status": draft.status,
            "service_type": draft.service_type,
            "location": draft.location,
            "latitude": draft.latitude,
            "longitude": draft.longitude,
            "description": draft.description,
            "urgency": draft.urgency,
            "media": json.dumps(draft.media),
            "language": language,
            "updated_at": now,
        }
        if draft.status == "confirmed":
            values["confirmed_at"] = now
        if draft.id is None:
            table = db["service_requests"]
            table.insert({**values, "conversation_id": conversation_id, "customer_id": customer_id, "created_at": now})
            return int(table.last_pk)
        db["service_requests"].update(draft.id, values)
        return draft.id
