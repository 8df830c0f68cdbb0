"""``POST /api/ai-suggestions/generate``: three quick replies for a customer, each at most 50 characters.

``{"user": ...}`` and/or ``{"message": ...}`` -> ``{"suggestions": [3 strings], "language", "provider",
"fallback"}``. Written by the multi-LLM service; when no provider gives a valid set, fixed defaults in
the customer's language come back with ``"fallback": true``. ``user`` is a chat API user (``chat:<user>``),
like on ``/webhook/chat``: this unauthenticated route never reads a WhatsApp customer's conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort, current_app, jsonify

from bot.conversation.customers import chat_customer_id
from bot.web.chat_api import MESSAGE_MAX_CHARS, USER_MAX_CHARS, json_object, text_field
from bot.web.webhooks import whatsapp_runtime
from bot.whatsapp.runtime import EXTENSION_KEY, WhatsAppRuntime

if TYPE_CHECKING:
    from bot.web import AppServices

blueprint = Blueprint("suggestions_api", __name__)


def init_app(app: Flask, services: AppServices) -> None:
    whatsapp_runtime(app, services)
    app.register_blueprint(blueprint)


@blueprint.post("/api/ai-suggestions/generate")
def generate() -> Any:
    body = json_object()
    user = text_field(body, "user", USER_MAX_CHARS, required=False)
    message = text_field(body, "message", MESSAGE_MAX_CHARS, required=False)
    if user is None and message is None:
        abort(400, description="give 'user' (an id or phone number) or 'message', or both")
    runtime: WhatsAppRuntime = current_app.extensions[EXTENSION_KEY]
    result = runtime.suggestions.generate(chat_customer_id(user) if user else None, message)
    return jsonify(
        suggestions=result.items,
        language=result.language,
        provider=result.provider,
        fallback=result.fallback,
        conversation_id=result.conversation_id,
    )
