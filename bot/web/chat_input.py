"""What the web-chat routes read from a request: the JSON body, its text fields, the session credential and
the client address the limits count. Bad input is a 400 and an unknown credential a 401, both before any
model is asked.

The credential is the ``session`` field of the JSON body: the token ``POST /webhook/chat`` returned on a
conversation's first turn. A body field rather than a header keeps the two chat routes one shape, and
leaves ``Authorization`` to the admin API's bearer token.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, abort, current_app, request

from bot.conversation.chat_sessions import TOKEN_MAX_CHARS, ChatSession, ChatSessions
from bot.store import Store
from bot.web.limits import client_key

USER_MAX_CHARS = 128
MESSAGE_MAX_CHARS = 4096
SESSIONS_KEY = "djobea.chat_sessions"


def json_object() -> dict[str, Any]:
    """The request's JSON object, or 400 saying what is wrong with it."""
    if not request.is_json:
        abort(400, description="expected Content-Type application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # not covered by silent=True: JSON nested thousands deep
        abort(400, description="the body nests too deeply")
    if not isinstance(body, dict):
        abort(400, description="the body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, max_chars: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        abort(400, description=f"'{name}' must be a non-empty string")
    if len(value) > max_chars:
        abort(400, description=f"'{name}' is longer than {max_chars} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): JSON allows it, SQLite cannot store it
        abort(400, description=f"'{name}' is not valid Unicode text (it holds a lone surrogate)")
    return value.strip()


def session_of(body: dict[str, Any]) -> ChatSession | None:
    """The session the body's ``session`` token names; None without one; 401 for a token we never issued."""
    if body.get("session") is None:
        return None
    token = text_field(body, "session", TOKEN_MAX_CHARS) or ""
    session = chat_sessions(current_app).find(token)
    if session is None:
        abort(
            401,
            description="unknown chat session: 'session' must be the token POST /webhook/chat returned; "
            "to start a new conversation, send no 'session'",
        )
    return session


def client_address() -> str:
    """The client's address as the limits count it (``remote_addr``, set from X-Forwarded-For by ProxyFix only
    for TRUSTED_PROXY_HOPS proxies)."""
    return client_key(request.remote_addr)


def chat_sessions(app: Flask) -> ChatSessions:
    """The app's ``ChatSessions``, built on first use (both chat routes share it)."""
    sessions = app.extensions.get(SESSIONS_KEY)
    if sessions is None:
        store: Store = app.extensions["djobea"].store
        sessions = app.extensions[SESSIONS_KEY] = ChatSessions(store, app.config.get("WHATSAPP_CLOCK", time.time))
    return sessions
