"""``ChatSessions``: the credential that names a web-chat conversation, issued by the server.

The web chat is unauthenticated, so what a client calls itself (``user``) can never be a key: anyone
could type another visitor's id. Instead the first turn issues a session: an unguessable token handed to
the client once, and a random conversation key (``chat:<32 hex>``) the engine uses. Later turns present
the token; only its sha256 is stored (table ``chat_sessions``), so neither the database nor a log line
can be replayed as a credential. 256 random bits need no slow hash: nobody can search that space.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.conversation.customers import chat_customer_id
from bot.store import Store

TOKEN_BYTES = 32  # 256 bits, url-safe base64: 43 characters
TOKEN_MAX_CHARS = 128  # a longer "token" is refused before it is even hashed
LABEL_MAX_CHARS = 128


@dataclass(frozen=True)
class ChatSession:
    customer_id: str  # the conversation key; not a secret, never accepted from a client
    user_label: str | None
    token_hash: str


@dataclass(frozen=True)
class IssuedSession:
    """A new session and its token: the only moment the token exists outside the client."""

    token: str
    session: ChatSession

    def __repr__(self) -> str:  # the token must not reach a log line through a debug print
        return f"IssuedSession(token='***', session={self.session!r})"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ChatSessions:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def issue(self, user_label: str | None = None) -> IssuedSession:
        """A new session with its own empty conversation key; the label is kept for display only."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = ChatSession(chat_customer_id(secrets.token_hex(16)), user_label, token_hash(token))
        now = self.clock()
        with self.store.immediate() as db:
            db["chat_sessions"].insert(
                {
                    "token_hash": session.token_hash,
                    "customer_id": session.customer_id,
                    "user_label": (user_label or "")[:LABEL_MAX_CHARS] or None,
                    "created_at": now,
                    "last_seen_at": now,
                }
            )
        return IssuedSession(token, session)

    def find(self, token: str) -> ChatSession | None:
        """The session this token was issued for, or None for a token we never issued."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        rows = self.store.db.execute(
            "select customer_id, user_label, token_hash from chat_sessions where token_hash = ?", [token_hash(token)]
        ).fetchall()
        return ChatSession(*rows[0]) if rows else None

    def seen(self, session: ChatSession) -> None:
        """Record that the session was used now (idle sessions can then be told apart and expired)."""
        with self.store.immediate() as db:
            db.execute(
                "update chat_sessions set last_seen_at = ? where token_hash = ?", [self.clock(), session.token_hash]
            )
