"""Cut a reply into WhatsApp-sized parts on sentence boundaries (Twilio refuses bodies over 1600 characters)."""

from __future__ import annotations

import re

WHATSAPP_MAX_CHARS = 1600
# A sentence ends at . ! ? … (with any closing quotes/brackets) followed by space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»)\]]*\s+|\n+")


def split_message(text: str, limit: int = WHATSAPP_MAX_CHARS) -> list[str]:
    """Parts of at most ``limit`` characters, cut after whole sentences where possible.

    A sentence longer than ``limit`` is cut at the last space that fits, and a word longer than
    ``limit`` (a URL) is cut where it must be; no text is dropped except the whitespace at the cuts.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for sentence in _sentences(text):
        for piece in _fit(sentence, limit):
            joined = f"{current} {piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return parts


def _sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(0).rstrip())
        sentences.append(text[start:end].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _fit(sentence: str, limit: int) -> list[str]:
    """``sentence`` in pieces of at most ``limit`` characters, cut at spaces when there is one."""
    pieces = []
    while len(sentence) > limit:
        cut = sentence.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(sentence[:cut].rstrip())
        sentence = sentence[cut:].lstrip()
    if sentence:
        pieces.append(sentence)
    return pieces
