"""Who a customer is: one id per person and channel.

A WhatsApp sender ``whatsapp:+237 6 99...`` is ``+2376...``, proven by Twilio's signature. A web-chat
visitor is ``chat:<random id>``, the key of a session the server issued (``bot.conversation.chat_sessions``);
what the client calls itself is a display label, never a key, so naming another visitor or a phone number
opens nobody's conversation or request.
"""

from __future__ import annotations

import re

_PHONE = re.compile(r"^\+?[0-9]{6,15}$")  # ASCII digits only: \d also matches other scripts
_SEPARATORS = re.compile(r"[\s\-().]")
CHAT_PREFIX = "chat:"


def phone_number(raw: str) -> str | None:
    """``+2376...`` for anything that is a phone number (with or without ``whatsapp:``, spaces, dashes)."""
    value = raw.strip()
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    value = _SEPARATORS.sub("", value)
    if not _PHONE.match(value):
        return None
    return value if value.startswith("+") else f"+{value}"


def chat_customer_id(key: str) -> str:
    """The conversation key of a web-chat session (``key``: the random id the session was issued with);
    never a WhatsApp customer's, whose ids start with ``+``."""
    return f"{CHAT_PREFIX}{key.strip()}"
