"""What routes read from a request: the JSON body (of every route that takes one: the web chat's and the
admin API's; what it must hold is its model's to say, ``bot.contracts``), the chat routes' session credential
and the client address the limits count. Bad input is a 400 and an unknown credential a 401, both before any
model is asked.

The credential is the ``session`` field of the JSON body: the token ``POST /webhook/chat`` returned on a
conversation's first turn. A body field rather than a header keeps the two chat routes one shape, and
leaves ``Authorization`` to the admin API's bearer token.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, current_app, request

from bot.conversation.chat_sessions import ChatSession, ChatSessions
from bot.web.app_services import services_of
from bot.web.limits import client_key


def json_object() -> dict[str, Any]:
    """The request's JSON object (Content-Type application/json required), or 400 saying what is wrong with it."""
    if not request.is_json:
        abort(400, description="expected Content-Type application/json")
    return _parsed_object(force=False)


def optional_json_object() -> dict[str, Any]:
    """The JSON object of a request whose body is optional (the admin API's POST routes): ``{}`` without a
    body, read as JSON whatever its Content-Type."""
    if not request.get_data(cache=True).strip():
        return {}
    return _parsed_object(force=True)


def _parsed_object(force: bool) -> dict[str, Any]:
    try:
        body = request.get_json(force=force, silent=True)
    except RecursionError:  # not covered by silent=True: JSON nested thousands deep
        abort(400, description="the body nests too deeply")
    if not isinstance(body, dict):
        abort(400, description="the body must be a JSON object")
    return body


def session_named(token: str | None) -> ChatSession | None:
    """The session a body's ``session`` token names; None without one; 401 for a token we never issued."""
    if token is None:
        return None
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
    """The ``ChatSessions`` of the app's services (both chat routes share them)."""
    return services_of(app).chat_sessions
