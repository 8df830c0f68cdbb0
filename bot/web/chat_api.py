"""``POST /webhook/chat``: the conversation engine over plain JSON, answered synchronously.

``{"user": "<id or phone>", "message": "..."}`` -> ``{"reply", "provider", "conversation_id", ...}``.
Same engine and history as WhatsApp: a user given as a phone number continues that number's
WhatsApp conversation. When no provider answers, the message is kept in the history and the holding
reply is returned with ``"holding": true`` and ``"provider": null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request

from bot.conversation.customers import customer_id_for
from bot.conversation.engine import Turn
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
    body = request.get_json(silent=True)
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
    return value.strip()


@blueprint.post("/webhook/chat")
def chat() -> Any:
    body = json_object()
    user = text_field(body, "user", USER_MAX_CHARS) or ""
    message = text_field(body, "message", MESSAGE_MAX_CHARS) or ""
    runtime: WhatsAppRuntime = current_app.extensions[EXTENSION_KEY]
    turn = Turn(customer_id=customer_id_for(user), text=message, channel="chat")
    try:
        decision = runtime.engine.respond(turn)
    except AllProvidersFailed:
        language = runtime.engine.language_of(turn)
        with runtime.store.immediate() as db:
            reply = runtime.engine.commit_unanswered(db, turn, language)
        conversation = runtime.history.find(turn.customer_id)
        return jsonify(
            reply=reply,
            provider=None,
            conversation_id=conversation.id if conversation else None,
            language=language,
            holding=True,
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
