"""Turn Twilio's inbound webhook form into an ``InboundMessage``, or say precisely what is wrong with it.

Twilio adds fields over time; the whole form is kept with the message, only the ones we use are checked.
A valid signature does not prove the fields are the ones Twilio sent (names and values are signed with no
separator, so they can be re-cut), which is why the SID must have Twilio's exact shape and agree with its aliases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from bot.conversation.customers import phone_number
from bot.inbound import InboundMessage

MAX_MEDIA = 10  # WhatsApp allows one medium per message, MMS up to 10
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")  # Twilio's Message SIDs (SMS/WhatsApp and MMS); fullmatch only
_SID_ALIASES = ("SmsMessageSid", "SmsSid")  # older names Twilio still sends, always with the MessageSid's value


class MalformedWebhook(ValueError):
    """The form cannot be a Twilio message: answered 400 with this message as the reason, nothing stored."""


def twilio_message_sid(form: Mapping[str, str]) -> str:
    """The form's MessageSid (``SmsMessageSid`` when it is the only one), checked; else ``MalformedWebhook``."""
    name = "MessageSid" if "MessageSid" in form else "SmsMessageSid"
    sid = form.get(name) or ""
    if not sid:
        raise MalformedWebhook("MessageSid is missing")
    if not _MESSAGE_SID.fullmatch(sid):
        raise MalformedWebhook(f"{name} must be SM or MM followed by 32 lowercase hex digits, got {sid[:40]!r}")
    for alias in _SID_ALIASES:
        if alias != name and alias in form and form[alias] != sid:
            raise MalformedWebhook(f"{alias} {form[alias][:40]!r} differs from {name} {sid!r}")
    return sid


def inbound_from_twilio_form(form: Mapping[str, str], payload_digest: str | None = None) -> InboundMessage:
    """``payload_digest``: the sha256 of what Twilio signed (``signatures.verify_signature``), kept for dedup."""
    sid = twilio_message_sid(form)
    sender = (form.get("From") or "").strip()
    if not sender:
        raise MalformedWebhook("From is missing")
    phone = phone_number(sender)
    if phone is None:
        raise MalformedWebhook("From is not a phone number (expected whatsapp:+<digits>)")
    body = form.get("Body") or ""
    media = _media(form)
    latitude = _coordinate(form, "Latitude", 90)
    longitude = _coordinate(form, "Longitude", 180)
    if (latitude is None) != (longitude is None):
        raise MalformedWebhook("Latitude and Longitude must come together")
    if not body.strip() and not media and latitude is None:
        raise MalformedWebhook("the message has no Body, no media and no location")
    return InboundMessage(
        message_sid=sid,
        customer_id=phone,
        body=body,
        channel="whatsapp",
        from_number=sender,
        to_number=(form.get("To") or "").strip() or None,
        profile_name=(form.get("ProfileName") or "").strip() or None,
        media=media,
        latitude=latitude,
        longitude=longitude,
        form=dict(form),
        payload_digest=payload_digest,
    )


def _media(form: Mapping[str, str]) -> list[dict[str, str]]:
    raw = (form.get("NumMedia") or "0").strip()
    try:
        count = int(raw)
    except ValueError:
        raise MalformedWebhook(f"NumMedia must be an integer, got {raw[:20]!r}") from None
    if not 0 <= count <= MAX_MEDIA:
        raise MalformedWebhook(f"NumMedia must be between 0 and {MAX_MEDIA}")
    media = []
    for index in range(count):
        url = (form.get(f"MediaUrl{index}") or "").strip()
        if not url.startswith(("https://", "http://")):
            raise MalformedWebhook(f"MediaUrl{index} is missing or not a URL while NumMedia is {count}")
        media.append({"url": url, "content_type": (form.get(f"MediaContentType{index}") or "").strip()})
    return media


def _coordinate(form: Mapping[str, str], name: str, bound: float) -> float | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise MalformedWebhook(f"{name} must be a number") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise MalformedWebhook(f"{name} must be between -{bound:g} and {bound:g}")
    return value
