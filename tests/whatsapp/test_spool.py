"""While another process holds the database's write lock (the worker process's threads, in a burst), the webhook
still acknowledges at once: the message goes to the spool beside the database, and a mover puts it in the queue,
in order and once, where the workers answer it. Signed webhooks, real SQLite files, the emulated providers and
Twilio."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.inbound import InboundMessage
from bot.inbound.queue import inbound_row
from bot.inbound.spool import InboundSpool
from tests.support import CUSTOMER, Harness, wait_until


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holds the database's write lock, as a worker thread waiting for the GIL does."""
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("begin immediate")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def spool_of(harness: Harness) -> InboundSpool:
    spool = harness.runtime.spool
    assert spool is not None
    return spool


def queued(harness: Harness) -> list[tuple[str, str]]:
    return list(harness.runtime.store.db.execute("select body, status from inbound_messages order by id"))


def left_spooled(harness: Harness, body: str) -> None:
    """A message in the spool as a web process killed before its mover ran leaves it (no mover started here)."""
    message = InboundMessage(message_sid=f"SM{uuid.uuid4().hex}", customer_id=CUSTOMER, body=body)
    other_process = InboundSpool.beside(harness.runtime.queue)
    with other_process.store.immediate() as db:
        db.execute("insert into spooled (row) values (?)", [json.dumps(inbound_row(message, harness.clock()))])


def test_a_message_arriving_while_the_lock_is_held_is_acknowledged_spooled_then_answered(harness: Harness) -> None:
    with write_lock_held(harness.runtime.store.path):
        response = harness.whatsapp("Bonjour, j'ai une fuite d'eau sous l'evier")

        assert response.status_code == 200 and "<Response/>" in response.get_data(as_text=True)
        assert queued(harness) == [] and spool_of(harness).holds_messages()

    # The mover, nudged by the webhook, stores it as soon as the lock is free.
    wait_until(lambda: queued(harness) == [("Bonjour, j'ai une fuite d'eau sous l'evier", "pending")], what="moved")
    wait_until(lambda: not spool_of(harness).holds_messages(), what="spool emptied")
    harness.drain()

    assert len(harness.sent()) == 1 and harness.inbound_statuses() == ["done"]


def test_a_later_message_waits_behind_a_spooled_one_even_with_the_lock_free(harness: Harness) -> None:
    left_spooled(harness, "Bonjour, c'est pour la plomberie")

    response = harness.whatsapp("J'habite a Bonamoussadi")  # the lock is free: it still goes behind the first

    assert response.status_code == 200
    wait_until(lambda: len(queued(harness)) == 2, what="both moved")
    assert [body for body, _ in queued(harness)] == ["Bonjour, c'est pour la plomberie", "J'habite a Bonamoussadi"]
    harness.drain()
    assert len(harness.sent()) == 2 and harness.inbound_statuses() == ["done", "done"]


def test_what_a_dead_process_spooled_is_moved_when_the_next_one_starts(
    make_harness: Callable[..., Harness],
) -> None:
    first = make_harness()
    left_spooled(first, "My tap is leaking")
    assert "\ndjobea_inbound_spooled 1.0\n" in first.client.get("/metrics").get_data(as_text=True)

    restarted = make_harness()  # same database: gunicorn's replacement for the killed worker

    wait_until(lambda: queued(restarted) == [("My tap is leaking", "pending")], what="moved at start")
    restarted.drain()
    assert len(restarted.sent()) == 1


def test_a_redelivery_spooled_after_the_message_was_stored_is_stored_once(harness: Harness) -> None:
    sid = f"SM{uuid.uuid4().hex}"
    assert harness.whatsapp("Mon frigo ne marche plus", sid=sid).status_code == 200
    with write_lock_held(harness.runtime.store.path):
        assert harness.whatsapp("Mon frigo ne marche plus", sid=sid).status_code == 200  # Twilio's retry
        assert spool_of(harness).holds_messages()

    wait_until(lambda: not spool_of(harness).holds_messages(), what="spool emptied")
    assert queued(harness) == [("Mon frigo ne marche plus", "pending")]
    harness.drain()
    assert len(harness.sent()) == 1


def test_a_spooled_row_the_queue_refuses_is_set_aside_and_holds_back_nothing(harness: Harness) -> None:
    """A row no queue can take (a bug, a damaged file) must not keep every later message in the spool."""
    left_spooled(harness, "Bonjour, c'est pour la plomberie")
    spool = InboundSpool.beside(harness.runtime.queue)
    nameless = inbound_row(InboundMessage(message_sid=f"SM{uuid.uuid4().hex}", customer_id=CUSTOMER, body="x"), 0.0)
    nameless = json.dumps({**nameless, "customer_id": None})
    with spool.store.immediate() as db:
        db.execute("insert into spooled (row) values (?)", [nameless])  # breaks NOT NULL: not a mere duplicate
        db.execute("""insert into spooled (row) values ('["not", "a", "row"]')""")
        db.execute("insert into spooled (row) values ('not json')")
    left_spooled(harness, "J'habite a Bonamoussadi")

    assert spool.move() == 2

    assert [body for body, _ in queued(harness)] == ["Bonjour, c'est pour la plomberie", "J'habite a Bonamoussadi"]
    assert not spool.holds_messages()
    refused = spool.store.db.execute("select row, error from refused order by id").fetchall()
    assert [row for row, _ in refused] == [nameless, '["not", "a", "row"]', "not json"]
    assert "NOT NULL" in refused[0][1] and "Expecting value" in refused[2][1]
