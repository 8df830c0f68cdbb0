"""``POST /webhook/chat``: the conversation engine over plain JSON, answered synchronously.

First turn: ``{"message": "...", "user": "<optional display label>"}`` -> ``{"reply", "provider",
"conversation_id", "language", "holding", "request", "session": "<token>"}``. Later turns send that token
back: ``{"session": "<token>", "message": "..."}`` (same answer, without ``session``). The token is the
only key to a conversation: it is returned once, only its hash is stored, and an unknown one is a 401.
``user`` is a label and never names a conversation, so posting someone else's id (or a phone number)
starts a new, empty conversation and reveals nothing; WhatsApp customers are never reachable from here.

Same engine as WhatsApp. When no provider answers, the message is kept in the history and the holding
reply is returned with ``"holding": true`` and ``"provider": null``; when every provider refused the
message for what it says, the reply asks to rephrase (``"holding": false``) and the words are kept out of
later prompts, which they would get refused too. Bad input (not a JSON object, nested too deep, text that
is not valid Unicode) is a 400 before any model is asked. So are the limits (``bot.web.limits``): 429
(rate per session or address, daily budget) or 503 (no model slot free, a store that cannot take a
write), each with ``Retry-After``; a store that fails later in the turn is a 503 too, never a 500.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, current_app

from bot.contracts import contract
from bot.contracts.chat import CHAT, ChatReply, ChatRequest
from bot.conversation.engine import Turn, refused_for_its_content
from bot.llm import AllProvidersFailed
from bot.logs import current_request_id
from bot.web.app_services import current_services
from bot.web.chat_input import chat_sessions, client_address, json_object, session_named
from bot.web.contracts import answer, parsed
from bot.web.limits import answer_refusals, model_gate
from bot.whatsapp.runtime import WhatsAppRuntime

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
blueprint = Blueprint("chat_api", __name__)
answer_refusals(blueprint)


def init_app(app: Flask, services: Services) -> None:
    """Register the route; its WhatsApp runtime (engine, history) and sessions come from ``services``."""
    app.register_blueprint(blueprint)


@blueprint.post("/webhook/chat")
@contract(CHAT)
def chat() -> Any:
    body = parsed(ChatRequest, json_object())
    session = session_named(body.session)
    sessions = chat_sessions(current_app)
    runtime = current_services().whatsapp
    issued = None
    with model_gate(current_app).admitted("chat", client_address(), session.customer_id if session else None):
        if session is None:
            issued = sessions.issue(body.user)
            session = issued.session
        else:
            sessions.seen(session)
        turn = Turn(session.customer_id, body.message, channel="chat", request_id=current_request_id())
        reply = _respond(runtime, turn)
    if issued is not None:
        reply.session = issued.token  # the one response that ever carries it
    return answer(reply)


def _start_dispatch(request_id: int) -> None:
    """A web-chat customer has no WhatsApp number: dispatch records the request as ``manual`` and alerts staff.
    A failure only delays that until the dispatch tick, which starts every confirmed request nobody started."""
    try:
        current_services().dispatch.start(request_id)
    except Exception:  # noqa: BLE001 - the customer's answer stands; the tick retries
        log.exception("starting the dispatch of request %s failed; the dispatch tick will start it", request_id)


def _respond(runtime: WhatsAppRuntime, turn: Turn) -> ChatReply:
    try:
        decision = runtime.engine.respond(turn)
    except AllProvidersFailed as exc:
        language = runtime.engine.language_of(turn)
        refused = refused_for_its_content(exc)
        with runtime.store.immediate() as db:
            reply = runtime.engine.commit_unanswered(db, turn, language, refused=refused)
        conversation = runtime.history.find(turn.customer_id)
        return ChatReply(
            reply=reply,
            provider=None,
            conversation_id=conversation.id if conversation else None,
            language=language,
            holding=not refused,
            request=None,
        )
    if decision.request.status == "confirmed" and decision.request.id is not None:
        _start_dispatch(decision.request.id)
    request_state = decision.request.known() | {"status": decision.request.status} if decision.request.started else None
    return ChatReply.model_validate(
        {
            "reply": decision.reply,
            "provider": decision.provider,
            "conversation_id": decision.conversation_id,
            "language": decision.language,
            "holding": False,
            "request": request_state,
        }
    )
