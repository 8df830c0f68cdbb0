"""Who a customer is: one id per person and channel.

A WhatsApp sender ``whatsapp:+237 6 99...`` is ``+2376...``, proven by Twilio's signature. A user of the
unauthenticated chat API is ``chat:<user>`` whatever they type, even a phone number: naming a number must
never open that customer's WhatsApp conversation or their open request.
"""

from __future__ import annotations

import re

_PHONE = re.compile(r"^\+?\d{6,15}$")
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


def chat_customer_id(user: str) -> str:
    """The conversation key of a chat API user; never a WhatsApp customer's."""
    return f"{CHAT_PREFIX}{user.strip()}"
