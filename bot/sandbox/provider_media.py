"""Media in provider requests: which parts each real API takes, what it refuses, and what they cost in tokens.

``media_in_request`` reads a request body as the provider reads it and returns the media parts it carried
(decoded, hashed and sized), or raises ``MediaRefused`` with the provider's own 400 when the real API would
refuse them. Pure functions, like ``provider_payloads``; the emulator records the parts with each call.

What each provider takes (and the emulator checks)::

    claude   content blocks {"type": "image", "source": {"type": "base64", "media_type", "data"}} with
             image/jpeg, png, gif or webp whose bytes match the type; "document" base64 only as application/pdf;
             any other block type (audio of any kind) is refused: 400 invalid_request_error naming the block;
             an empty "messages" list is refused ("at least one message is required"): what LiteLLM sends
             when a user turn held only input_audio, which it drops for Anthropic
    gemini   parts {"inlineData" | "inline_data": {"mimeType" | "mime_type", "data"}} with image/*, audio/*,
             video/*, text/* or application/pdf; another MIME type is 400 INVALID_ARGUMENT "Unsupported MIME type"
    openai   chat parts {"type": "image_url", "image_url": {"url": "data:image/...;base64,..."}} (png, jpeg, gif,
             webp; else 400 invalid_image_format) and {"type": "input_audio", "input_audio": {"data", "format"}}
             with format wav or mp3 only (the real API's enum; else 400 invalid_value); plus the multipart
             ``file`` of POST /v1/audio/transcriptions

Token counts follow the providers' published rules closely enough for a plausible cost: Claude images
width*height/750, Gemini 258 per image and 32 per second of audio, OpenAI 85 + 170 per 512-pixel tile and 10 per
second of audio.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any

from bot.sandbox.provider_payloads import ProviderResponse, media_refused_response

CLAUDE_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
CLAUDE_BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use",
     "web_search_tool_result", "search_result", "container_upload"}
)  # fmt: skip
OPENAI_IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
OPENAI_AUDIO_FORMATS = ("wav", "mp3")
GEMINI_MIME_FAMILIES = ("image/", "audio/", "video/", "text/")


@dataclass(frozen=True, slots=True)
class MediaPart:
    """One media item a request carried: where (message index), what (kind, MIME type), which bytes (sha256)."""

    message_index: int
    kind: str  # image, audio, document
    mime_type: str | None
    sha256: str | None  # None when only a URL or file id was sent
    size: int | None
    tokens: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "message_index": self.message_index,
            "kind": self.kind,
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "size": self.size,
            "tokens": self.tokens,
            "width": self.width,
            "height": self.height,
            "duration_s": self.duration_s,
            "url": self.url,
        }


class MediaRefused(Exception):
    """The real API would refuse this request's media; ``response`` is its 400."""

    def __init__(self, response: ProviderResponse) -> None:
        super().__init__(response.body.decode(errors="replace"))
        self.response = response


# --- reading bytes ----------------------------------------------------------------------------------------


def _decode(data: Any) -> bytes | None:
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def sniff_image_type(data: bytes) -> str | None:
    """The image MIME type the bytes really are (by magic number), for the types the providers take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG; None when the header cannot be read."""
    kind = sniff_image_type(data)
    if kind == "image/png" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if kind == "image/gif" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if kind == "image/jpeg":
        at = 2
        while at + 9 < len(data) and data[at] == 0xFF:
            marker, length = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[at + 5 : at + 9])
                return width, height
            at += 2 + length
    return None


def audio_duration(data: bytes) -> float:
    """Seconds of audio: from an Ogg stream's last granule position or a WAV header, else from the size at
    16 kb/s (a WhatsApp voice note's rate)."""
    if data.startswith(b"OggS"):
        last = data.rfind(b"OggS")
        if last + 14 <= len(data):
            granule = struct.unpack("<q", data[last + 6 : last + 14])[0]
            rate = 48_000
            vorbis = data.find(b"\x01vorbis")
            if vorbis != -1 and vorbis + 16 <= len(data):
                rate = struct.unpack("<I", data[vorbis + 12 : vorbis + 16])[0] or rate
            if granule > 0:
                return round(granule / rate, 2)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) >= 44:
        byte_rate = struct.unpack("<I", data[28:32])[0]
        if byte_rate:
            return round((len(data) - 44) / byte_rate, 2)
    return round(len(data) / 2000, 2)


# --- tokens -----------------------------------------------------------------------------------------------


def image_tokens(provider: str, size: tuple[int, int] | None, detail: str | None = None) -> int:
    width, height = size or (1024, 1024)
    if provider == "claude":
        scale = min(1.0, 1568 / max(width, height))
        return max(1, math.ceil(width * scale * height * scale / 750))
    if provider == "gemini":
        return 258
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    return 85 + 170 * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)


def audio_tokens(provider: str, seconds: float) -> int:
    per_second = 32 if provider == "gemini" else 10
    return max(1, math.ceil(seconds * per_second))


def image_part(provider: str, index: int, mime_type: str | None, data: bytes, detail: str | None = None) -> MediaPart:
    size = image_size(data)
    return MediaPart(
        index, "image", mime_type, hashlib.sha256(data).hexdigest(), len(data), image_tokens(provider, size, detail),
        width=size[0] if size else None, height=size[1] if size else None,
    )  # fmt: skip


def audio_part(provider: str, index: int, mime_type: str | None, data: bytes) -> MediaPart:
    seconds = audio_duration(data)
    return MediaPart(
        index, "audio", mime_type, hashlib.sha256(data).hexdigest(), len(data), audio_tokens(provider, seconds),
        duration_s=seconds,
    )  # fmt: skip


# --- per provider -----------------------------------------------------------------------------------------


def media_in_request(provider: str, body: dict[str, Any]) -> list[MediaPart]:
    """The media parts of a chat request, in message order; raises ``MediaRefused`` as the real API would.

    Message indexes count as ``EmulatedRequest.messages`` does: Claude's and Gemini's system prompt first."""
    if provider == "claude":
        return _claude_media(body)
    if provider == "gemini":
        return _gemini_media(body)
    return _openai_media(body)


def _refuse(provider: str, message: str, **extra: str) -> MediaRefused:
    return MediaRefused(media_refused_response(provider, message, **extra))  # type: ignore[arg-type]


def _claude_media(body: dict[str, Any]) -> list[MediaPart]:
    messages = body.get("messages")
    if isinstance(messages, list) and not messages:
        raise _refuse("claude", "messages: at least one message is required")
    offset = 1 if body.get("system") else 0
    found = []
    for i, message in enumerate(messages or []):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            where = f"messages.{i}.content.{j}"
            kind = block.get("type")
            if kind not in CLAUDE_BLOCK_TYPES:
                expected = ", ".join(f"'{name}'" for name in sorted(CLAUDE_BLOCK_TYPES))
                raise _refuse(
                    "claude",
                    f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                    f"{expected}",
                )
            if kind not in ("image", "document"):
                continue
            source = block.get("source") or {}
            if source.get("type") == "url":
                found.append(MediaPart(offset + i, kind, None, None, None, 0, url=source.get("url")))
                continue
            if source.get("type") != "base64":
                continue
            media_type = source.get("media_type")
            data = _decode(source.get("data"))
            if kind == "document":
                if media_type != "application/pdf":
                    raise _refuse(
                        "claude", f"{where}.document.source.base64.media_type: Input should be 'application/pdf'"
                    )
                if data is None:
                    raise _refuse("claude", f"{where}.document.source.base64.data: invalid base64 data")
                found.append(
                    MediaPart(offset + i, "document", media_type, hashlib.sha256(data).hexdigest(), len(data), 1500)
                )
                continue
            if media_type not in CLAUDE_IMAGE_TYPES:
                raise _refuse(
                    "claude",
                    f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                    "'image/gif' or 'image/webp'",
                )
            if data is None:
                raise _refuse("claude", f"{where}.image.source.base64: invalid base64 data")
            if sniff_image_type(data) != media_type:
                raise _refuse(
                    "claude",
                    f"{where}.image.source.base64.data: Image does not match the provided media type {media_type}",
                )
            found.append(image_part("claude", offset + i, media_type, data))
    return found


def _gemini_media(body: dict[str, Any]) -> list[MediaPart]:
    offset = 1 if (body.get("systemInstruction") or body.get("system_instruction")) else 0
    found = []
    for i, content in enumerate(body.get("contents") or []):
        for j, part in enumerate((content or {}).get("parts") or []):
            if not isinstance(part, dict):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            file_data = part.get("fileData") or part.get("file_data")
            if isinstance(file_data, dict):
                mime = file_data.get("mimeType") or file_data.get("mime_type")
                kind = (
                    "image"
                    if str(mime).startswith("image/")
                    else "audio"
                    if str(mime).startswith("audio/")
                    else "document"
                )
                url = file_data.get("fileUri") or file_data.get("file_uri")
                found.append(MediaPart(offset + i, kind, mime, None, None, 0, url=url))
            if not isinstance(inline, dict):
                continue
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            essence = mime.split(";")[0].strip().lower()
            if not (essence.startswith(GEMINI_MIME_FAMILIES) or essence == "application/pdf"):
                raise _refuse("gemini", f"Unsupported MIME type: {mime}")
            data = _decode(inline.get("data"))
            if data is None:
                raise _refuse(
                    "gemini",
                    f"Invalid value at 'contents[{i}].parts[{j}].inline_data.data' (TYPE_BYTES), Base64 decoding "
                    "failed",
                )
            if essence.startswith("image/"):
                found.append(image_part("gemini", offset + i, mime, data))
            elif essence.startswith("audio/"):
                found.append(audio_part("gemini", offset + i, mime, data))
            else:
                digest = hashlib.sha256(data).hexdigest()
                found.append(MediaPart(offset + i, "document", mime, digest, len(data), 258))
    return found


def _openai_media(body: dict[str, Any]) -> list[MediaPart]:
    found = []
    for i, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                detail = image.get("detail") if isinstance(image, dict) else None
                if not isinstance(url, str) or not url.startswith("data:"):
                    found.append(MediaPart(i, "image", None, None, None, 85, url=url if isinstance(url, str) else None))
                    continue
                header, _, encoded = url[5:].partition(",")
                mime = header.split(";")[0].lower()
                data = _decode(encoded) if header.endswith(";base64") else None
                if data is None or mime.removeprefix("image/") not in OPENAI_IMAGE_FORMATS:
                    raise _refuse(
                        "openai",
                        "You uploaded an unsupported image. Please make sure your image has of one the following "
                        "formats: ['png', 'jpeg', 'gif', 'webp'].",
                        code="invalid_image_format",
                    )
                found.append(image_part("openai", i, mime, data, detail))
            elif part.get("type") == "input_audio":
                audio = part.get("input_audio") or {}
                audio_format = audio.get("format")
                if audio_format not in OPENAI_AUDIO_FORMATS:
                    raise _refuse(
                        "openai",
                        f"Invalid value: '{audio_format}'. Supported values are: 'wav' and 'mp3'.",
                        code="invalid_value",
                        param=f"messages[{i}].content[{j}].input_audio.format",
                    )
                data = _decode(audio.get("data"))
                if data is None:
                    raise _refuse(
                        "openai",
                        "The audio file could not be decoded or its format is not supported.",
                        param=f"messages[{i}].content[{j}].input_audio.data",
                    )
                found.append(audio_part("openai", i, f"audio/{audio_format}", data))
    return found


def media_tokens_by_kind(parts: list[MediaPart]) -> dict[str, int]:
    """Tokens per kind (image, audio, document), for the providers' per-modality usage fields."""
    totals: dict[str, int] = {}
    for part in parts:
        totals[part.kind] = totals.get(part.kind, 0) + part.tokens
    return totals
