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

from flask import Blueprint, Flask, current_app

from bot.contracts import contract
from bot.contracts.chat import SUGGESTIONS, SuggestionsReply, SuggestionsRequest
from bot.web.app_services import current_services
from bot.web.chat_input import client_address, json_object, session_named
from bot.web.contracts import answer, parsed
from bot.web.limits import answer_refusals, model_gate

if TYPE_CHECKING:
    from bot.services import Services

blueprint = Blueprint("suggestions_api", __name__)
answer_refusals(blueprint)


def init_app(app: Flask, services: Services) -> None:
    """Register the route; its suggestion writer comes from ``services``' WhatsApp runtime."""
    app.register_blueprint(blueprint)


@blueprint.post("/api/ai-suggestions/generate")
@contract(SUGGESTIONS)
def generate() -> Any:
    body = parsed(SuggestionsRequest, json_object())  # 'user' is checked as on /webhook/chat, used for nothing
    session = session_named(body.session)
    runtime = current_services().whatsapp
    customer_id = session.customer_id if session else None
    with model_gate(current_app).admitted("suggestions", client_address(), customer_id):
        result = runtime.suggestions.generate(customer_id, body.message)
    return answer(
        SuggestionsReply(
            suggestions=result.items,
            language=result.language,
            provider=result.provider,
            fallback=result.fallback,
            conversation_id=result.conversation_id,
        )
    )
