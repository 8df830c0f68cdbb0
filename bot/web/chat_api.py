"""``POST /webhook/chat``: the conversation engine over plain JSON, answered synchronously.

``{"user": "<id>", "message": "..."}`` -> ``{"reply", "provider", "conversation_id", "request", ...}``.
Same engine as WhatsApp, but the route is unauthenticated, so its users live apart: ``user`` names the
conversation ``chat:<user>``, even when it is a phone number, and never reaches a WhatsApp customer's
conversation or request. When no provider answers, the message is kept in the history and the holding
reply is returned with ``"holding": true`` and ``"provider": null``; when every provider refused the
message for what it says, the reply asks to rephrase (``"holding": false``) and the words are kept out of
later prompts, which they would get refused too. Bad input (not a JSON object, nested
too deep, text that is not valid Unicode) is a 400 before any model is asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request

from bot.conversation.customers import chat_customer_id
from bot.conversation.engine import Turn, refused_for_its_content
from bot.llm import AllProvidersFailed
from bot.web.webhooks import whatsapp_runtime
from bot.whatsapp.runtime import EXTENSION_KEY, WhatsAppRuntime

if TYPE_CHECKING:
    from bot.web import AppServices

USER_MAX_CHARS = 128
MESSAGE_MAX_CHARS = 4096

blueprint = Blueprint("chat_api", __name__)


def init_app(app: Flask, services: AppServices) -> None:
    whatsapp_runtime(app, services)
    app.register_blueprint(blueprint)


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


@blueprint.post("/webhook/chat")
def chat() -> Any:
    body = json_object()
    user = text_field(body, "user", USER_MAX_CHARS) or ""
    message = text_field(body, "message", MESSAGE_MAX_CHARS) or ""
    runtime: WhatsAppRuntime = current_app.extensions[EXTENSION_KEY]
    turn = Turn(customer_id=chat_customer_id(user), text=message, channel="chat")
    try:
        decision = runtime.engine.respond(turn)
    except AllProvidersFailed as exc:
        language = runtime.engine.language_of(turn)
        refused = refused_for_its_content(exc)
        with runtime.store.immediate() as db:
            reply = runtime.engine.commit_unanswered(db, turn, language, refused=refused)
        conversation = runtime.history.find(turn.customer_id)
        return jsonify(
            reply=reply,
            provider=None,
            conversation_id=conversation.id if conversation else None,
            language=language,
            holding=not refused,
            request=None,
        )
    request_state = decision.request.known() | {"status": decision.request.status} if decision.request.started else None
    return jsonify(
        reply=decision.reply,
        provider=decision.provider,
        conversation_id=decision.conversation_id,
        language=decision.language,
        holding=False,
        request=request_state,
    )
