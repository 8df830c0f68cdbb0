"""``MediaIntake``: the media of one inbound message, fetched once and kept, as the conversation engine needs them.

Each item is fetched (``MediaFetcher``), its bytes kept by hash (``MediaLibrary``) and what became of it recorded in
``inbound_media`` before the next one; a message taken again (a retry, another worker after a crash) reads the rows
and fetches nothing twice. Every outcome is recorded, failures included, so a slow or broken URL costs its time
once. All items of a message share ``MEDIA_FETCH_TOTAL_S``; nothing here raises for what the network does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.media.fetcher import FETCHED, MediaFetcher, plain_type
from bot.media.library import MediaLibrary, MediaRow
from bot.media.settings import MediaSettings

log = logging.getLogger(__name__)

NOT_STORED = "not_stored"  # fetched, but the bytes could not be written (disk full, read-only)


@dataclass(frozen=True)
class MediaItem:
    row: MediaRow
    data: bytes | None  # the bytes, when fetched and still on disk

    @property
    def usable(self) -> bool:
        return self.row.status == FETCHED and self.data is not None


class MediaIntake:
    def __init__(self, fetcher: MediaFetcher, library: MediaLibrary, settings: MediaSettings) -> None:
        self.fetcher = fetcher
        self.library = library
        self.settings = settings
        self._turns = threading.BoundedSemaphore(settings.turns_at_once)

    @contextmanager
    def turn_slot(self) -> Iterator[None]:
        """Held by a turn that carries media, from fetching through its model calls: each may hold
        ``MEDIA_MAX_BYTES`` per medium, and again as base64 for the model, so dozens of worker threads on media
        at once would hold gigabytes. The others wait their turn (the lease heartbeat keeps their messages)."""
        with self._turns:
            yield

    def gather(self, inbound_id: int, media: list[dict[str, str]]) -> list[MediaItem]:
        """Every item of ``media`` (``[{"url", "content_type"}]``, in MediaUrlN order) with its outcome."""
        known = self.library.rows(inbound_id)
        deadline = time.monotonic() + self.settings.total_s
        items: list[MediaItem] = []
        for position, medium in enumerate(media):
            row = known.get(position) or self._fetch(inbound_id, position, medium, deadline)
            data = self.library.read(row.sha256) if row.status == FETCHED and row.sha256 else None
            items.append(MediaItem(row, data))
        return items

    def set_transcript(self, item: MediaItem, transcript: str, by: str) -> None:
        self.library.set_transcript(item.row.inbound_id, item.row.position, transcript, by)

    def _fetch(self, inbound_id: int, position: int, medium: dict[str, str], deadline: float) -> MediaRow:
        url = medium.get("url") or ""
        declared = plain_type(medium.get("content_type")) or None
        fetched = self.fetcher.fetch(url, declared, deadline)
        status, error, sha256 = fetched.status, fetched.error, None
        if fetched.data is not None:
            try:
                sha256 = self.library.keep(fetched.data)
            except OSError as exc:
                status, error = NOT_STORED, f"could not store the bytes: {exc.strerror or exc}"
        if status != FETCHED:
            log.warning("media %d of inbound message %s not used: %s (%s)", position, inbound_id, status, error)
        return self.library.record(
            MediaRow(
                inbound_id=inbound_id,
                position=position,
                url=url,
                declared_type=declared,
                content_type=fetched.content_type,
                status=status,
                sha256=sha256,
                bytes=len(fetched.data) if fetched.data is not None else None,
                transcript=None,
                transcribed_by=None,
                error=error,
            )
        )
