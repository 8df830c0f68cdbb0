"""Is this webhook really from Twilio? ``X-Twilio-Signature`` checked with twilio's ``RequestValidator``.

The signature covers the URL Twilio called and every form field. Behind a TLS-terminating proxy the
app sees ``http://internal:8000/...`` while Twilio signed ``https://bot.example.com/...``: with
``PUBLIC_BASE_URL`` set, the URL is rebuilt from it (path and query kept), which is what fixes that.
Webhooks signed with a SharedKey carry ``X-Twilio-Webhooks-Signature-Settings``; they are checked
with ``TWILIO_WEBHOOK_SHARED_KEY`` and the algorithm the header names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from bot.whatsapp.settings import WhatsAppSettings


def signed_url(settings: WhatsAppSettings, request_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path (+ query) when set, else the URL as received."""
    if not settings.public_base_url:
        return request_url
    return settings.public_base_url + path + (f"?{query}" if query else "")


def signature_problem(settings: WhatsAppSettings, url: str, params: Any, headers: Mapping[str, str]) -> str | None:
    """None when the request is signed by Twilio, else why it is refused (shown in the 403)."""
    signature = headers.get("X-Twilio-Signature")
    if not signature:
        return "X-Twilio-Signature header is missing"
    signature_settings = headers.get(SIGNATURE_SETTINGS_HEADER)
    if signature_settings and "key=" in signature_settings:
        secret = settings.shared_key
        if not secret:
            return "signed with a Twilio SharedKey but TWILIO_WEBHOOK_SHARED_KEY is not set"
    else:
        secret = settings.auth_token
        if not secret:
            return "TWILIO_AUTH_TOKEN is not set, so no signature can be accepted"
    algorithm = get_signature_algorithm(signature_settings)
    if not RequestValidator(secret).validate(url, params, signature, algorithm=algorithm):
        return "X-Twilio-Signature does not match this URL and form"
    return None
