"""Staff hear of each newly confirmed request, and of each request nobody accepted, exactly once: on the
admin WhatsApp number through the outbox, and on the alert webhook (real HTTP to a local receiver) under a
claim, whatever the number of processes ticking at once; a failing webhook is retried later."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.dispatch.conftest import STAFF, World


class Receiver:
    """A local webhook: records JSON posts; answers 500 to the first ``failures`` of them."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                failing = receiver.failures > 0
                receiver.failures -= 1
                if not failing:
                    receiver.posts.append(body)
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_each_fact_is_announced_once_on_whatsapp_and_the_webhook(make_world, receiver: Receiver) -> None:
    settings = {"staff_whatsapp": STAFF, "staff_webhook_url": receiver.url, "batch_size": 1, "timeout_s": 60}
    worlds: list[World] = [make_world(**settings) for _ in range(3)]  # three processes on one database
    world = worlds[0]
    world.artisan("Alain", "+237690000001")
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    world.clock.advance(60)

    tick_together(worlds)
    tick_together(worlds)

    posted = sorted((p["kind"], p["request_id"]) for p in receiver.posts)
    assert posted == [("new_request", request_id), ("no_artisan", request_id)]  # each once, whoever posted it
    new = next(p for p in receiver.posts if p["kind"] == "new_request")
    assert new["text"].startswith(f"[Djobea] Nouvelle demande n°{request_id} confirmée : plomberie")
    assert len(world.sent(STAFF)) == 2
    assert world.store.db.execute(
        "select count(*) from staff_announcements where webhook = 'delivered'"
    ).fetchone() == (2,)


def test_a_failing_webhook_is_retried_later(make_world, receiver: Receiver) -> None:
    receiver.failures = 1
    world: World = make_world(staff_webhook_url=receiver.url)
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)

    world.dispatch.tick()
    row = world.store.db.execute("select webhook, attempts, last_error from staff_announcements").fetchone()
    assert row[:2] == ("pending", 1) and "500" in row[2]
    assert [p["kind"] for p in receiver.posts] == ["no_artisan"]  # the next one is not held back

    world.dispatch.tick()  # not yet due again
    assert len(receiver.posts) == 1
    world.clock.advance(31)
    world.dispatch.tick()
    assert [p["kind"] for p in receiver.posts] == ["no_artisan", "new_request"]


def test_without_a_webhook_nothing_waits_for_one(world: World) -> None:
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    assert world.store.db.execute("select webhook from staff_announcements").fetchall() == [("none",), ("none",)]


def tick_together(worlds: list[World]) -> None:
    barrier = threading.Barrier(len(worlds))
    errors: list[BaseException] = []

    def tick(world: World) -> None:
        barrier.wait()
        try:
            world.dispatch.tick()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(w,)) for w in worlds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
