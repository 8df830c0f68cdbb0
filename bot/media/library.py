"""``MediaLibrary``: the ``inbound_media`` rows and the bytes they point to, under the data directory.

Bytes are stored once per content, at ``<database dir>/media/<sha256[:2]>/<sha256>``, written to a temporary
file in the same directory and renamed into place (a reader never sees half a file, two writers of the same
bytes end with one file). Retention deletes the rows of old messages, then every file no row names any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.store import Store

# A file is kept, and only then its row written: retention spares files this young whatever the rows say.
WRITE_GRACE_S = 600.0


@dataclass(frozen=True)
class MediaRow:
    inbound_id: int
    position: int
    url: str
    declared_type: str | None
    content_type: str | None
    status: str
    sha256: str | None
    bytes: int | None
    transcript: str | None
    transcribed_by: str | None
    error: str | None

    @property
    def kind(self) -> str:
        """image, audio or other: from the served type of fetched bytes, else from what Twilio declared."""
        chosen = self.content_type if self.status == "fetched" else self.declared_type or self.content_type
        major = (chosen or "").split("/", 1)[0]
        return major if major in ("image", "audio") else "other"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MediaRow:
        return cls(**{name: row.get(name) for name in cls.__dataclass_fields__})


class MediaLibrary:
    def __init__(self, store: Store, directory: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.directory = directory or Path(store.path).resolve().parent / "media"
        self.clock = clock

    def path_of(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256

    def keep(self, data: bytes) -> str:
        """Store ``data`` by its sha256 (once, atomically) and return the hash."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_of(sha256)
        if target.is_file() and target.stat().st_size == len(data):
            os.utime(target)  # fresh again: retention leaves files touched within WRITE_GRACE_S alone
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return sha256

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path_of(sha256).read_bytes()
        except OSError:
            return None

    def rows(self, inbound_id: int) -> dict[int, MediaRow]:
        found = self.store.db["inbound_media"].rows_where("inbound_id = ?", [inbound_id], order_by="position")
        return {row["position"]: MediaRow.from_row(row) for row in found}

    def record(self, row: MediaRow) -> MediaRow:
        """Write what became of one item; a row already there for (message, index) wins (another worker's)."""
        with self.store.immediate() as db:
            db.execute(
                "insert or ignore into inbound_media (inbound_id, position, url, declared_type, content_type, status,"
                " sha256, bytes, transcript, transcribed_by, error, fetched_at) values (?,?,?,?,?,?,?,?,?,?,?,?)",
                [row.inbound_id, row.position, row.url, row.declared_type, row.content_type, row.status, row.sha256,
                 row.bytes, row.transcript, row.transcribed_by, row.error, self.clock()],
            )  # fmt: skip
        return self.rows(row.inbound_id)[row.position]

    def set_transcript(self, inbound_id: int, position: int, transcript: str, by: str) -> None:
        with self.store.immediate() as db:
            db.execute(
                "update inbound_media set transcript = ?, transcribed_by = ? where inbound_id = ? and position = ?",
                [transcript, by, inbound_id, position],
            )

    def transcripts(self, inbound_ids: list[int]) -> dict[int, list[str]]:
        """Voice-note transcripts by inbound message (for the admin's view of a conversation)."""
        if not inbound_ids:
            return {}
        marks = ",".join("?" * len(inbound_ids))
        found: dict[int, list[str]] = {}
        for inbound_id, transcript in self.store.db.execute(
            f"select inbound_id, transcript from inbound_media where inbound_id in ({marks})"
            " and transcript is not null order by inbound_id, position",
            inbound_ids,
        ):
            found.setdefault(inbound_id, []).append(transcript)
        return found

    def delete_before(self, cutoff: float) -> dict[str, int]:
        """Forget the media of messages received before ``cutoff``, and delete the files no row names any more."""
        with self.store.immediate() as db:
            rows = db.execute(
                "delete from inbound_media where inbound_id in"
                " (select id from inbound_messages where received_at < ?)"
                " or (fetched_at < ? and inbound_id not in (select id from inbound_messages))",
                [cutoff, cutoff],
            ).rowcount
            kept = {sha for (sha,) in db.execute("select distinct sha256 from inbound_media where sha256 is not null")}
        files = 0
        if self.directory.is_dir():
            for path in self.directory.glob("*/*"):
                # Temporary files of a write in progress start with a dot and are left to their writer.
                if path.name.startswith(".") or path.name in kept:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if path.is_file() and time.time() - path.stat().st_mtime > WRITE_GRACE_S:
                        path.unlink()
                        files += 1
        return {"inbound_media": rows, "media_files": files}
