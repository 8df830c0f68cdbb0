"""Fetching media safely (``bot.media``) against the emulated Twilio media URLs over real HTTP: basic auth to Twilio
only, the redirect to the CDN followed without it, the type allow-list, the size cap (from Content-Length, and
while streaming), timeouts, bytes kept once by hash, one fetch per message and index, and retention."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.admin.retention import delete_old_rows
from bot.media import MediaFetcher, MediaIntake, MediaLibrary, MediaSettings
from bot.media.fetcher import plain_type
from bot.sandbox import ProviderEmulator
from bot.sandbox.media import fixture
from bot.store import Store
from tests.support import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture
def twilio(emulator: ProviderEmulator):
    emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    return emulator.twilio


def intake(store: Store, emulator: ProviderEmulator, **settings: float) -> MediaIntake:
    media_settings = MediaSettings(**{"timeout_s": 1.0, **settings})  # type: ignore[arg-type]
    fetcher = MediaFetcher(media_settings, emulator.base_url, ACCOUNT_SID, AUTH_TOKEN)
    return MediaIntake(fetcher, MediaLibrary(store), media_settings)


def inbound(store: Store, received_at: float | None = None) -> int:
    """An inbound_messages row for media rows to belong to."""
    table = store.db["inbound_messages"]
    columns = {c.name for c in table.columns}
    row = {"customer_id": "+237699000001", "body": "", "received_at": received_at or time.time()}
    optional = {"status": "pending", "channel": "whatsapp", "message_sid": f"SM{os.urandom(16).hex()}", "form": "{}"}
    row.update({k: v for k, v in optional.items() if k in columns})
    return table.insert(row).last_pk


def test_a_voice_note_is_fetched_with_twilio_auth_and_kept_by_hash(store: Store, emulator, twilio) -> None:
    data, content_type = fixture("pidgin_voice_note")
    url = twilio.add_media(data, "audio/ogg; codecs=opus")
    message = inbound(store)

    [item] = intake(store, emulator).gather(message, [{"url": url, "content_type": content_type}])

    sha256 = hashlib.sha256(data).hexdigest()
    assert (item.row.status, item.row.content_type, item.row.sha256, item.row.bytes) == (
        "fetched", "audio/ogg", sha256, len(data),
    )  # fmt: skip
    assert item.data == data
    assert (Path(store.path).parent / "media" / sha256[:2] / sha256).read_bytes() == data
    # Twilio got the account's credentials; its CDN, which it redirected to, got none.
    assert [(f["step"], f["auth_user"], f["status"]) for f in twilio.media_fetches()] == [
        ("twilio", ACCOUNT_SID, 307), ("cdn", None, 200),
    ]  # fmt: skip
    assert twilio.media_fetches()[0]["authorized"] is True


def test_a_message_taken_again_fetches_nothing_twice(store: Store, emulator, twilio) -> None:
    data, content_type = fixture("fridge_photo")
    media = [{"url": twilio.add_media(data, content_type), "content_type": content_type}]
    message = inbound(store)

    first = intake(store, emulator).gather(message, media)
    again = intake(store, emulator).gather(message, media)

    assert first == again and again[0].data == data
    assert len(twilio.media_fetches()) == 2  # one 307 and one CDN read, for both
    assert store.db["inbound_media"].count == 1


def test_the_same_bytes_in_two_messages_are_one_file(store: Store, emulator, twilio) -> None:
    data, content_type = fixture("fridge_photo")
    for _ in range(2):
        intake(store, emulator).gather(
            inbound(store), [{"url": twilio.add_media(data, content_type), "content_type": content_type}]
        )
    files = [p for p in (Path(store.path).parent / "media").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [hashlib.sha256(data).hexdigest()]


@pytest.mark.parametrize(
    ("fault", "declared", "status", "error"),
    [
        ("404", "image/png", "unreachable", "HTTP 404"),
        ("wrong_type", "image/png", "refused_type", "served as text/html"),
        (None, "video/mp4", "refused_type", "declared type video/mp4"),
    ],
)
def test_what_cannot_be_used_is_recorded_with_the_reason(
    store: Store, emulator, twilio, fault: str | None, declared: str, status: str, error: str
) -> None:
    data, _ = fixture("fridge_photo")
    url = twilio.add_media(data, declared, fault=fault)

    [item] = intake(store, emulator).gather(inbound(store), [{"url": url, "content_type": declared}])

    assert (item.row.status, item.data, item.usable) == (status, None, False)
    assert error in item.row.error
    if declared == "video/mp4":
        assert twilio.media_fetches() == []  # refused from the declared type, before any request


def test_oversized_media_is_refused_from_its_content_length(store: Store, emulator, twilio) -> None:
    data, content_type = fixture("pidgin_voice_note")
    url = twilio.add_media(data, content_type)

    [item] = intake(store, emulator, max_bytes=1000).gather(
        inbound(store), [{"url": url, "content_type": content_type}]
    )

    assert item.row.status == "too_large" and "8758 bytes, over the 1000-byte cap" in item.row.error
    assert not (Path(store.path).parent / "media").exists()


def test_a_hanging_cdn_costs_one_read_timeout(store: Store, emulator, twilio) -> None:
    data, content_type = fixture("fridge_photo")
    url = twilio.add_media(data, content_type, fault="hang")

    started = time.monotonic()
    [item] = intake(store, emulator, timeout_s=0.5).gather(inbound(store), [{"url": url, "content_type": content_type}])

    assert item.row.status == "timeout"
    assert time.monotonic() - started < 3


def test_all_media_of_a_message_share_one_time_bound(store: Store, emulator, twilio) -> None:
    data, content_type = fixture("fridge_photo")
    media = [
        {"url": twilio.add_media(data, content_type, fault="hang"), "content_type": content_type} for _ in range(4)
    ]

    started = time.monotonic()
    items = intake(store, emulator, timeout_s=0.5, total_s=1.2).gather(inbound(store), media)

    assert [i.row.status for i in items] == ["timeout"] * 4
    assert time.monotonic() - started < 2.5  # 1.2 s for the message, not 4 x 0.5 s + each one's wait


def test_urls_off_twilios_origin_are_never_requested(store: Store, emulator, twilio) -> None:
    url = "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    [item] = intake(store, emulator).gather(inbound(store), [{"url": url, "content_type": "image/png"}])
    assert item.row.status == "refused_host"


class _Streamer(BaseHTTPRequestHandler):
    """A media server that sends an allowed type with no Content-Length and more bytes than the cap."""

    protocol_version = "HTTP/1.0"
    sent = 0

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        try:
            for _ in range(64):
                self.wfile.write(b"\xff" * 4096)
                type(self).sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def streamer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Streamer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_body_without_length_is_stopped_at_the_cap(store: Store, streamer: str) -> None:
    settings = MediaSettings(max_bytes=10_000, timeout_s=2)
    fetched = MediaFetcher(settings, streamer, ACCOUNT_SID, AUTH_TOKEN).fetch(
        f"{streamer}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg", time.monotonic() + 5
    )
    assert (fetched.status, fetched.data) == ("too_large", None)
    assert "over the 10000-byte cap" in fetched.error


def test_types_are_compared_without_their_parameters() -> None:
    assert plain_type("Audio/OGG; codecs=opus") == "audio/ogg"
    assert plain_type(None) == ""


def test_retention_forgets_old_media_and_deletes_files_nobody_names(store: Store, emulator, twilio) -> None:
    photo, photo_type = fixture("fridge_photo")
    voice, voice_type = fixture("pidgin_voice_note")
    now = time.time()
    old = inbound(store, received_at=now - 100 * 86400)
    recent = inbound(store, received_at=now)
    media = intake(store, emulator)
    media.gather(old, [{"url": twilio.add_media(voice, voice_type), "content_type": voice_type}])
    media.gather(old, [])  # nothing new
    media.gather(recent, [{"url": twilio.add_media(photo, photo_type), "content_type": photo_type}])
    library = media.library
    for path in library.directory.rglob("*"):  # written long ago, as far as the grace period is concerned
        os.utime(path, (now - 3600, now - 3600))

    deleted = delete_old_rows(store, 90, clock=lambda: now)

    assert (deleted["inbound_media"], deleted["media_files"]) == (1, 1)
    assert [r["inbound_id"] for r in store.db["inbound_media"].rows] == [recent]
    assert library.read(hashlib.sha256(photo).hexdigest()) == photo
    assert library.read(hashlib.sha256(voice).hexdigest()) is None


def test_retention_spares_a_file_just_written(store: Store) -> None:
    library = MediaLibrary(store)
    library.keep(b"\x89PNG not yet recorded")
    assert delete_old_rows(store, 90)["media_files"] == 0


def test_turns_carrying_media_take_turns_within_the_configured_bound(make_harness) -> None:
    """MEDIA_TURNS_AT_ONCE bounds the media bytes one process holds: a turn beyond it waits for a slot."""
    import threading

    intake = make_harness(MEDIA_TURNS_AT_ONCE="1").runtime.engine.media
    entered = threading.Event()

    def second_turn() -> None:
        with intake.turn_slot():
            entered.set()

    with intake.turn_slot():
        waiting = threading.Thread(target=second_turn)
        waiting.start()
        assert not entered.wait(0.3)  # the one slot is taken
    assert entered.wait(5)  # released: the waiting turn goes on
    waiting.join(timeout=5)
