"""``POST /api/ai-suggestions/generate``: three quick replies for a customer, each at most 50 characters.

``{"session": ...}`` and/or ``{"message": ...}`` -> ``{"suggestions": [3 strings], "language", "provider",
"fallback", "conversation_id"}``. Written by the multi-LLM service; when no provider gives a valid set,
fixed defaults in the customer's language come back with ``"fallback": true``. ``session`` is the token
``POST /webhook/chat`` issued, and reads only that session's conversation (an unknown token is a 401).
Without it only ``message`` is used: ``user`` is a display label that names no conversation, so this
unauthenticated route never reads anyone's history, a WhatsApp customer's least of all. The limits of
``bot.web.limits`` apply as on the chat route (429/503 with ``Retry-After``, before any model is asked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort, current_app, jsonify

from bot.web.chat_input import MESSAGE_MAX_CHARS, USER_MAX_CHARS, client_address, json_object, session_of, text_field
from bot.web.limits import answer_refusals, model_gate
from bot.web.webhooks import whatsapp_runtime
from bot.whatsapp.runtime import EXTENSION_KEY, WhatsAppRuntime

if TYPE_CHECKING:
    from bot.web import AppServices

blueprint = Blueprint("suggestions_api", __name__)
answer_refusals(blueprint)


def init_app(app: Flask, services: AppServices) -> None:
    whatsapp_runtime(app, services)
    app.register_blueprint(blueprint)


@blueprint.post("/api/ai-suggestions/generate")
def generate() -> Any:
    body = json_object()
    text_field(body, "user", USER_MAX_CHARS, required=False)  # checked like on /webhook/chat, used for nothing
    message = text_field(body, "message", MESSAGE_MAX_CHARS, required=False)
    session = session_of(body)
    if session is None and message is None:
        abort(
            400,
            description="give 'session' (the token POST /webhook/chat returned) or 'message', or both; "
            "'user' alone names no conversation",
        )
    runtime: WhatsAppRuntime = current_app.extensions[EXTENSION_KEY]
    customer_id = session.customer_id if session else None
    with model_gate(current_app).admitted("suggestions", client_address(), customer_id):
        result = runtime.suggestions.generate(customer_id, message)
    return jsonify(
        suggestions=result.items,
        language=result.language,
        provider=result.provider,
        fallback=result.fallback,
        conversation_id=result.conversation_id,
    )
