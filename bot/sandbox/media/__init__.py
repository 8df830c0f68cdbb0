"""Test media for the sandbox, and what the scripted model perceives in any photo or voice note.

Two small committed files stand for what customers send on WhatsApp: ``fridge_photo`` (a PNG of a fridge's
control board with a burnt relay) and ``pidgin_voice_note`` (an OGG/Opus voice note in Pidgin). ``manifest.json``
maps the sha256 of each file's bytes to what a model sees or hears in it, so the emulated providers answer
deterministically: the photo's description and the voice note's transcript count as the customer's words.
Media the manifest does not know get a generic perception that names no trade, so they classify nothing.

For tests::

    data, content_type = fixture("pidgin_voice_note")
    transcript("pidgin_voice_note")      # what the emulated Whisper returns for it
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

MEDIA_DIR = Path(__file__).resolve().parent
MediaKind = Literal["image", "audio", "document"]

# What the emulated Whisper hears in audio it does not know: a greeting with no trade, place or urgency in it.
GENERIC_TRANSCRIPT = "Hello, please I need help."


@dataclass(frozen=True, slots=True)
class MediaFixture:
    """One committed test file and what a model perceives in it (a description, or a transcript for audio)."""

    name: str
    file: str
    content_type: str
    kind: MediaKind
    sha256: str
    perceived: str
    language: str | None = None
    duration_s: float | None = None

    @property
    def path(self) -> Path:
        return MEDIA_DIR / self.file

    def read(self) -> bytes:
        return self.path.read_bytes()


@cache
def fixtures() -> dict[str, MediaFixture]:
    """Every fixture of ``manifest.json`` by name."""
    manifest = json.loads((MEDIA_DIR / "manifest.json").read_text(encoding="utf-8"))
    found = {}
    for sha256, entry in manifest.items():
        if sha256.startswith("_"):
            continue
        found[entry["name"]] = MediaFixture(
            name=entry["name"],
            file=entry["file"],
            content_type=entry["content_type"],
            kind=entry["kind"],
            sha256=sha256,
            perceived=entry["perceived"],
            language=entry.get("language"),
            duration_s=entry.get("duration_s"),
        )
    return found


def _by_sha256() -> dict[str, MediaFixture]:
    return {f.sha256: f for f in fixtures().values()}


def fixture(name: str) -> tuple[bytes, str]:
    """The bytes and content type of a committed fixture (``fridge_photo``, ``pidgin_voice_note``)."""
    try:
        found = fixtures()[name]
    except KeyError:
        raise KeyError(f"no media fixture {name!r}; known: {', '.join(sorted(fixtures()))}") from None
    return found.read(), found.content_type


def transcript(name: str) -> str:
    """What the emulated transcription (and a model that hears audio) makes of the fixture ``name``."""
    return fixtures()[name].perceived


def description(name: str) -> str:
    """What a model that sees images makes of the fixture ``name``."""
    return fixtures()[name].perceived


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def known(sha256: str) -> MediaFixture | None:
    """The fixture with these bytes, if any."""
    return _by_sha256().get(sha256)


def perceive(kind: str, mime_type: str | None, sha256: str | None, size: int | None) -> str:
    """What the scripted model sees (image) or hears (audio) in one media part: the manifest's words for a
    fixture, otherwise a deterministic generic perception that names no trade, quartier or urgency."""
    found = known(sha256) if sha256 else None
    if found is not None:
        return found.perceived
    if kind == "audio":
        return GENERIC_TRANSCRIPT
    label = "photo" if kind == "image" else "document"
    details = ", ".join(filter(None, [mime_type, f"{size} bytes" if size is not None else None]))
    return f"a {label} that shows nothing the model can make out ({details})" if details else f"an unclear {label}"


def transcribe(sha256: str | None) -> str:
    """What the emulated ``/v1/audio/transcriptions`` returns for the audio with this sha256."""
    found = known(sha256) if sha256 else None
    return found.perceived if found is not None and found.kind == "audio" else GENERIC_TRANSCRIPT
