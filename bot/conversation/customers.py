"""Who a customer is: one id per person, whichever channel they write from.

A WhatsApp sender ``whatsapp:+237 6 99...`` and a chat user giving the same phone number share one
conversation; other chat ids are kept apart under ``chat:``.
"""

from __future__ import annotations

import re

_PHONE = re.compile(r"^\+?\d{6,15}$")
_SEPARATORS = re.compile(r"[\s\-().]")


def phone_number(raw: str) -> str | None:
    """``+2376...`` for anything that is a phone number (with or without ``whatsapp:``, spaces, dashes)."""
    value = raw.strip()
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    value = _SEPARATORS.sub("", value)
    if not _PHONE.match(value):
        return None
    return value if value.startswith("+") else f"+{value}"


def customer_id_for(raw: str) -> str:
    """The conversation key for a WhatsApp address, a phone number or any other chat user id."""
    phone = phone_number(raw)
    return phone if phone else f"chat:{raw.strip()}"
