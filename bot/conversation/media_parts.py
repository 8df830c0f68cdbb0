"""What the model is given of a turn's media: image and audio content parts, and one note per medium (what it
is, what it said, or why it is missing), kept in the history in place of the medium itself."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.media import MediaItem

# What the model reads about a medium it does not get, by inbound_media.status.
NOT_FETCHED = {"too_large": "too large", "refused_type": "a file type we do not take"}
MEDIUM = {"image": "a photo", "audio": "a voice note", "other": "a file"}
TRANSCRIBED = "[voice note, transcribed: "
UNHEARD_NOTE = "[a voice note nobody could listen to: ask the customer to type what it says]"
ASKED_TO_TYPE_NOTE = "[a voice note nobody could listen to; the customer was asked to type it]"
# input_audio formats (LiteLLM turns "ogg" into Gemini's audio/ogg) and transcription file names, by served type.
AUDIO_FORMAT = {"audio/ogg": "ogg", "audio/opus": "ogg", "audio/mpeg": "mp3", "audio/mp4": "mp4", "audio/amr": "amr"}
AUDIO_FILE = {"audio/ogg": "ogg", "audio/opus": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/amr": "amr"}


def needs_of(parts: list[dict[str, Any]]) -> frozenset[str]:
    wanted = {"image_url": "vision", "input_audio": "audio"}
    return frozenset(wanted[part["type"]] for part in parts if part["type"] in wanted)


def image_part(item: MediaItem) -> dict[str, Any]:
    assert item.data is not None
    data = base64.b64encode(item.data).decode()
    return {"type": "image_url", "image_url": {"url": f"data:{item.row.content_type};base64,{data}"}}


def audio_part(item: MediaItem) -> dict[str, Any]:
    assert item.data is not None
    audio_format = AUDIO_FORMAT.get(item.row.content_type or "", "ogg")
    return {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(item.data).decode(), "format": audio_format},
    }


def media_notes(
    items: list[MediaItem],
    *,
    hearing: bool = False,
    heard: str | None = None,
    unheard: str | None = None,
    unseen: bool = False,
) -> tuple[str, ...]:
    """One line per medium for the model and the history: what it is, or why it is missing.

    ``hearing``: the audio goes with this request; ``heard``: what the model that heard it said it says;
    ``unheard``: the note for a voice note nothing could listen to; ``unseen``: the photos were refused by every
    model that takes images."""
    notes = []
    elsewhere = []  # URLs not on Twilio's origin are never fetched: the model is told of them as before
    for item in items:
        row, what = item.row, MEDIUM[item.row.kind]
        if row.status == "refused_host":
            elsewhere.append(row.declared_type or "file")
        elif not item.usable:
            reason = NOT_FETCHED.get(row.status)  # else unreachable, timed out or not stored: no detail needed
            notes.append(f"[{what} could not be fetched: {reason}]" if reason else f"[{what} could not be fetched]")
        elif row.kind == "image":
            notes.append(
                "[a photo the assistant could not look at]" if unseen else "[the customer sent a photo: it is attached]"
            )
        elif row.kind == "audio" and row.transcript:
            notes.append(f'{TRANSCRIBED}"{row.transcript}"]')
        elif row.kind == "audio" and heard:
            notes.append(f'[voice note: "{heard}"]')
        elif row.kind == "audio" and hearing:
            notes.append("[the customer sent a voice note: it is attached; listen to it as their words]")
        elif row.kind == "audio" and unheard:
            notes.append(unheard)
        else:
            notes.append("[the customer sent a voice note]")
    if elsewhere:
        notes.append(f"[the customer sent {len(elsewhere)} attachment(s): {', '.join(elsewhere)}]")
    return tuple(notes)
