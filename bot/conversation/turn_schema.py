"""The structured output the model must give on every turn, and its parser.

A reply that does not parse or validate raises, which ``LLMService.complete(validate=...)`` counts as
bad output from that provider before asking the next one.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import TYPE_CHECKING, Literal

from langchain_core.exceptions import OutputParserException
from pydantic import BaseModel, Field, field_validator, model_validator

if TYPE_CHECKING:
    from langchain_core.output_parsers import PydanticOutputParser

SERVICE_TYPES = ("plomberie", "electricite", "electromenager")
REPLY_MAX_CHARS = 4000  # longer replies are split for WhatsApp; this only stops runaway output
# What models write instead of our three service names.
_SERVICE_SYNONYMS = {
    "plomberie": "plomberie",
    "plumbing": "plomberie",
    "plumber": "plomberie",
    "plombier": "plomberie",
    "electricite": "electricite",
    "electrical": "electricite",
    "electricity": "electricite",
    "electrician": "electricite",
    "electricien": "electricite",
    "electromenager": "electromenager",
    "reparation electromenager": "electromenager",
    "appliance": "electromenager",
    "appliance repair": "electromenager",
    "appliances": "electromenager",
}


class TurnReply(BaseModel):
    """One assistant turn: the message for the customer and what is now known of their request."""

    language: Literal["fr", "en", "pcm"] = Field(description="language the customer writes in: fr, en or pcm")
    reply: str = Field(description="the WhatsApp message to send the customer, in their language")
    service_type: str | None = Field(
        default=None, description="plomberie, electricite or electromenager; null while unknown"
    )
    location: str | None = Field(default=None, description="quartier or landmark in Douala; null while unknown")
    description: str | None = Field(default=None, description="the problem in a few words; null while unknown")
    urgency: str | None = Field(
        default=None, description="how urgent, or the preferred day/time, in the customer's words; null while unknown"
    )
    customer_confirmed: bool = Field(
        default=False, description="true only when the customer has just confirmed the summarised request"
    )
    customer_cancelled: bool = Field(default=False, description="true when the customer cancels the request")
    heard: str | None = Field(
        default=None,
        description="only when the customer's message carries a voice note: what they say in it, word for word, "
        "in their language; otherwise null",
    )

    @field_validator("reply")
    @classmethod
    def _reply_present(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("reply is empty")
        if len(value) > REPLY_MAX_CHARS:
            raise ValueError(f"reply is {len(value)} characters, over {REPLY_MAX_CHARS}")
        return value

    @field_validator("service_type")
    @classmethod
    def _known_service(cls, value: str | None) -> str | None:
        if value is None or not value.strip() or value.strip().lower() in ("null", "none", "unknown"):
            return None
        plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().strip().lower()
        if plain not in _SERVICE_SYNONYMS:
            raise ValueError(f"service_type {value!r} is not one of {', '.join(SERVICE_TYPES)}")
        return _SERVICE_SYNONYMS[plain]

    @field_validator("location", "description", "urgency", "heard")
    @classmethod
    def _blank_is_unknown(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        return value if value and value.lower() not in ("null", "none", "unknown") else None

    @model_validator(mode="after")
    def _storable(self) -> TurnReply:
        # A lone surrogate (an emoji's escape pair cut in two) parses as JSON but cannot be stored or sent.
        for name, value in self:
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"{name} holds a lone surrogate, which is not valid Unicode text") from None
        return self


@cache
def turn_parser() -> PydanticOutputParser:
    """Built on first use: ``langchain_core.output_parsers`` imports LangSmith's tracing (see ``prompts``)."""
    from langchain_core.output_parsers import PydanticOutputParser

    return PydanticOutputParser(pydantic_object=TurnReply)


@cache
def turn_format_instructions() -> str:
    """Built once: LangChain renders the JSON Schema afresh on every call, 6% of a message's CPU when it was per
    turn."""
    return turn_parser().get_format_instructions()


def parse_turn(text: str) -> TurnReply:
    """Parse a model's reply (JSON, possibly in a ``json`` fence); raises when it is not a valid TurnReply."""
    try:
        return turn_parser().parse(text)
    except OutputParserException as exc:
        # The error quotes the decoded reply: escape any lone surrogate so the rejection can be recorded.
        raise ValueError(str(exc).encode("utf-8", "backslashreplace").decode("utf-8")) from None
