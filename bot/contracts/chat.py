"""The contracts of the unauthenticated chat routes: ``POST /webhook/chat`` and ``POST /api/ai-suggestions/generate``.

A text field is a string with something besides whitespace in it (the route strips it), at most its length,
and valid Unicode: JSON can carry a lone surrogate ("\\ud800") that SQLite cannot store, and pydantic refuses
it. The chat bodies stay open to keys they do not name (clients send extras; they are ignored, as before).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from bot.contracts import Operation, Reply, RequestModel, ResponseModel, omittable
from bot.contracts.errors import REFUSALS, TOO_LARGE, error
from bot.conversation.chat_sessions import TOKEN_MAX_CHARS

USER_MAX_CHARS = 128
MESSAGE_MAX_CHARS = 4096
SESSION_MAX_CHARS = TOKEN_MAX_CHARS  # a longer "token" is refused before it is even hashed
# One character ``str.strip`` keeps: every character but Python's whitespace (``str.isspace``), spelled out
# so the document's regex, pydantic's and the fuzzer's agree (``\s`` differs between regex engines).
NOT_WHITESPACE = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
LANGUAGE = Literal["fr", "en", "pcm"]
UNICODE_NOTE = "; valid Unicode text (a lone surrogate such as \\ud800 is refused)"


def text(max_chars: int, description: str) -> Any:
    """A non-blank string of at most ``max_chars`` characters (counted before stripping), stripped."""
    return Annotated[
        str,
        Field(max_length=max_chars, pattern=NOT_WHITESPACE, description=description + UNICODE_NOTE),
        AfterValidator(str.strip),
    ]


UserLabel = text(USER_MAX_CHARS, "a display label chosen by the client; it names no conversation")
MessageText = text(MESSAGE_MAX_CHARS, "what the customer writes")
SessionToken = text(
    SESSION_MAX_CHARS,
    "the token the first answer of POST /webhook/chat returned: the only key to a conversation "
    "(an unknown one is a 401)",
)


class ChatInput(RequestModel):
    """The fields both chat routes read; null means absent."""

    model_config = ConfigDict(extra="ignore")
    PROBLEMS: ClassVar[dict[str, str]] = {
        "missing": "'{field}' must be a non-empty string",
        "string_type": "'{field}' must be a non-empty string",
        "string_pattern_mismatch": "'{field}' must be a non-empty string",
        "string_too_long": "'{field}' is longer than {max_length} characters",
        "string_unicode": "'{field}' is not valid Unicode text (it holds a lone surrogate)",
    }


class ChatRequest(ChatInput):
    """One customer message; ``session`` on every turn after the first."""

    user: UserLabel | None = None
    message: MessageText
    session: SessionToken | None = None


class SuggestionsRequest(ChatInput):
    """A chat session's conversation and/or one message (at least one of them)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["session"], "properties": {"session": {"type": "string"}}},
                {"required": ["message"], "properties": {"message": {"type": "string"}}},
            ]
        }
    )

    user: UserLabel | None = None
    message: MessageText | None = None
    session: SessionToken | None = None

    @model_validator(mode="after")
    def _session_or_message(self) -> SuggestionsRequest:
        if self.session is None and self.message is None:
            raise PydanticCustomError(
                "session_or_message",
                "give 'session' (the token POST /webhook/chat returned) or 'message', or both; "
                "'user' alone names no conversation",
            )
        return self


class ServiceRequestState(ResponseModel):
    """The conversation's open service request: what is known so far, and where it stands."""

    service_type: str = omittable()
    location: str = omittable()
    description: str = omittable()
    urgency: str = omittable()
    status: Literal["collecting", "awaiting_confirmation", "confirmed", "cancelled"]


class ChatReply(ResponseModel):
    reply: str
    provider: str | None = Field(description="the provider that answered; null when none did (holding reply)")
    conversation_id: int | None
    language: LANGUAGE
    holding: bool = Field(description="true when no provider answered and the message was kept for later")
    request: ServiceRequestState | None
    session: str = omittable(
        description="first turn only: the token to send with every later turn (returned once, stored as a hash)"
    )


class SuggestionsReply(ResponseModel):
    suggestions: list[Annotated[str, Field(max_length=50)]] = Field(min_length=3, max_length=3)
    language: LANGUAGE
    provider: str | None
    fallback: bool = Field(description="true when no provider gave a valid set: fixed defaults in the language")
    conversation_id: int | None = Field(description="the session's conversation; null without a session")


CHAT_ERRORS = {
    400: error("bad body: not a JSON object, a field missing, blank, too long or not valid Unicode"),
    401: error("'session' is not a token this server issued (nothing was read, no model was asked)"),
    **TOO_LARGE,
    **REFUSALS,
}

CHAT = Operation(
    summary="One customer message in, the assistant's reply out (JSON channel for tests and web chat). The first "
    "turn (no session) starts a conversation and returns its session token once; later turns send it back",
    tags=("chat",),
    body=ChatRequest,
    body_required=True,
    responses={200: Reply(ChatReply, "the reply"), **CHAT_ERRORS},
)

SUGGESTIONS = Operation(
    summary="Three short reply suggestions for a chat session's conversation and/or for one message",
    tags=("chat",),
    body=SuggestionsRequest,
    body_required=True,
    responses={200: Reply(SuggestionsReply, "three suggestions of at most 50 characters"), **CHAT_ERRORS},
)
