"""Is this webhook really from Twilio? ``X-Twilio-Signature`` checked with twilio's ``RequestValidator``.

The signature covers the URL Twilio called and every form field. Behind a TLS-terminating proxy the
app sees ``http://internal:8000/...`` while Twilio signed ``https://bot.example.com/...``: with
``PUBLIC_BASE_URL`` set, the URL is rebuilt from it (path and query kept), which is what fixes that.
Webhooks signed with a SharedKey carry ``X-Twilio-Webhooks-Signature-Settings``; they are checked
with ``TWILIO_WEBHOOK_SHARED_KEY`` and the algorithm the header names.

What Twilio signs is the URL followed by each field's name and value, sorted by name, with no separator,
so one signed payload can be re-cut into other fields (``MessageSid=SM…NumMedia0`` with ``NumMedia``
dropped) and still verify. A verified request therefore also yields the sha256 of that signed string:
the same digest means the same signed payload, however its fields are cut.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    add_port,
    compare,
    get_signature_algorithm,
    remove_port,
)

from bot.whatsapp.settings import WhatsAppSettings


class SignatureRefused(Exception):
    """The request is not signed by Twilio (missing, forged or unverifiable signature): answered 403 with this
    message as the reason, nothing stored."""


def signed_url(settings: WhatsAppSettings, request_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path (+ query) when set, else the URL as received."""
    if not settings.public_base_url:
        return request_url
    return settings.public_base_url + path + (f"?{query}" if query else "")


def verify_signature(settings: WhatsAppSettings, url: str, params: Any, headers: Mapping[str, str]) -> str:
    """The sha256 hex digest of what Twilio signed when the request is Twilio's, else ``SignatureRefused``."""
    signature = headers.get("X-Twilio-Signature")
    if not signature:
        raise SignatureRefused("X-Twilio-Signature header is missing")
    signature_settings = headers.get(SIGNATURE_SETTINGS_HEADER)
    if signature_settings and "key=" in signature_settings:
        secret = settings.shared_key
        if not secret:
            raise SignatureRefused("signed with a Twilio SharedKey but TWILIO_WEBHOOK_SHARED_KEY is not set")
    else:
        secret = settings.auth_token
        if not secret:
            raise SignatureRefused("TWILIO_AUTH_TOKEN is not set, so no signature can be accepted")
    algorithm = get_signature_algorithm(signature_settings)
    validator = RequestValidator(secret)
    if not validator.validate(url, params, signature, algorithm=algorithm):
        raise SignatureRefused("X-Twilio-Signature does not match this URL and form")
    # validate() accepts the URL without its port or with it (any port is stripped, a missing default one added):
    # the digest is taken over the one variant whose signature matched, so every way in yields the same digest.
    parsed = urlparse(url)
    for candidate in (remove_port(parsed), add_port(parsed)):
        if compare(validator.compute_signature(candidate, params, algorithm), signature):
            return payload_digest(signed_payload(candidate, params))
    raise SignatureRefused("X-Twilio-Signature does not match this URL and form")  # unreachable once validated


def signed_payload(url: str, params: Any) -> str:
    """The exact string Twilio signs: ``RequestValidator.compute_signature``'s concatenation (each distinct name,
    sorted, followed by each of its distinct values, sorted), after the URL."""
    text = url
    for name in sorted(set(params)):
        values = params.getlist(name) if hasattr(params, "getlist") else [params[name]]  # a MultiDict or a dict
        for value in sorted(set(values)):
            text += name + value
    return text


def payload_digest(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
