"""Removes secrets from text before it reaches a log line, an HTTP response or the database.

Provider error messages sometimes echo part of a key ("Incorrect API key provided: sk-ab...") and URLs
may carry ``?key=``; everything we store or show passes through ``redact_secrets`` first.
"""

from __future__ import annotations

import re

_SECRET_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{4,}"),
    re.compile(r"sk-(?:proj-)?[A-Za-z0-9_\-*]{8,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{10,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|key|token|x-api-key|x-goog-api-key)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]{6,}"),
]


def redact_secrets(text: str, *, known_secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` with API keys, bearer tokens and any of ``known_secrets`` replaced by ``***``."""
    for secret in known_secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


def storable(text: str) -> str:
    """``text`` as SQLite and JSON can take it: lone surrogates (half an emoji from a model or a
    client) become ``\\udXXX`` escapes instead of raising UnicodeEncodeError at write time."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def mask_key(key: str | None) -> str | None:
    """A key as admins may see it: its last four characters only."""
    if not key:
        return None
    return "***" + key[-4:] if len(key) > 8 else "***"
