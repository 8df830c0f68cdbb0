"""``HoldingReplies``: a customer kept waiting ``HOLDING_REPLY_AFTER_S`` gets the holding reply once, then the answer.

The workers cannot do this themselves: when arrivals outrun them, a waiting message is claimed by nobody, and a
claimed one waits on its model call. So one thread per worker process, beside the pool, looks for WhatsApp
messages still pending that long with nothing recorded for them (no holding reply, answer or apology) and sends
each the holding reply in its customer's language. It never blocks an answer:

- the row is keyed ``<inbound id>:holding``, the key the workers' own holding reply uses (``ConversationWorker
  ._hold``), so across every process a message gets at most one;
- it is handed to Twilio only if no answer or apology is recorded for the message yet (checked in the same
  transaction that marks it in flight); an answer recorded first drops it unsent (``Outbox.supersede``).

Artisans' messages (answers to offers) get none: they are not customers waiting on a model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlite_utils

from bot.conversation.fixed_replies import holding_reply
from bot.inbound.queue import PENDING
from bot.messaging.outbox import Outbox
from bot.messaging.sender import WhatsAppSender
from bot.store import Store

log = logging.getLogger(__name__)

SWEEP_LIMIT = 50  # holding replies sent per pass; the next pass follows at once when a pass was full
IDLE_WAIT_S = 1.0  # the longest a message can wait past its due time for the thread to look


class AnsweredMeanwhile(Exception):
    """The message got its answer (or apology) before its holding reply went out: the holding reply is dropped."""


class HoldingReplies:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        sender: WhatsAppSender,
        after_s: float,
        language_of: Callable[[str, str], str],
        is_artisan: Callable[[str | None], bool] = lambda number: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.sender = sender
        self.after_s = after_s
        self.language_of = language_of  # (customer id, message text) -> language code
        self.is_artisan = is_artisan
        self.clock = clock

    def due(self) -> list[dict]:
        """Pending WhatsApp messages received ``after_s`` ago or more with nothing recorded for them, oldest first."""
        return list(
            self.store.db.query(
                "select id, customer_id, from_number, body from inbound_messages i"
                " where status = ? and channel = 'whatsapp' and received_at <= ?"
                " and not exists (select 1 from outbound_messages o where o.inbound_id = i.id)"
                " order by received_at, id limit ?",
                [PENDING, self.clock() - self.after_s, SWEEP_LIMIT],
            )
        )

    def next_due_at(self) -> float | None:
        """When the oldest pending message with nothing recorded for it becomes due, if any."""
        row = self.store.db.execute(
            "select min(received_at) from inbound_messages i where status = ? and channel = 'whatsapp'"
            " and not exists (select 1 from outbound_messages o where o.inbound_id = i.id)",
            [PENDING],
        ).fetchone()
        return None if row[0] is None else row[0] + self.after_s

    def sweep(self, due: list[dict] | None = None) -> int:
        """Send the holding reply to every message due for one (``due``: as read earlier by ``due()``); returns
        how many were handed over (or kept, in the sandbox)."""
        sent = 0
        for message in self.due() if due is None else due:
            number = message["from_number"] or message["customer_id"]
            if self.is_artisan(number):
                continue
            inbound_id = message["id"]
            body = holding_reply(self.language_of(message["customer_id"], message["body"] or ""))
            try:
                with self.store.immediate() as db:
                    _still_waiting(db, inbound_id)
                    self.outbox.add(
                        db,
                        key=f"{inbound_id}:holding",
                        inbound_id=inbound_id,
                        customer_id=message["customer_id"],
                        to_number=number,
                        kind="holding",
                        bodies=[body],
                    )
                holding = self.outbox.for_inbound(inbound_id, kind="holding")
                if all(row.settled for row in holding):
                    continue  # another process sent it
                self.sender.deliver(holding, _waiting_fence(inbound_id))
            except AnsweredMeanwhile:
                continue
            sent += 1
            log.info("inbound message %s waited %g s: holding reply sent", inbound_id, self.after_s)
        return sent

    def run(self, stop: threading.Event) -> None:
        """Sweep until ``stop`` is set, waking when the next message falls due (at most ``IDLE_WAIT_S`` apart,
        so messages stored meanwhile, by any process, are seen)."""
        while not stop.is_set():
            wait = IDLE_WAIT_S
            try:
                if self.sweep() >= SWEEP_LIMIT:
                    continue
                due = self.next_due_at()
                if due is not None:
                    wait = min(max(due - self.clock(), 0.0), IDLE_WAIT_S)
            except Exception:  # noqa: BLE001 - e.g. a locked or read-only database: the thread must live on
                log.exception("holding replies: pass failed")
            stop.wait(wait)

    def start(self) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="holding-replies", daemon=True)
        thread.start()
        return thread, stop


def _still_waiting(db: sqlite_utils.Database, inbound_id: int) -> None:
    """Inside a write transaction: raise ``AnsweredMeanwhile`` once the message is done or anything but its
    holding reply is recorded for it."""
    row = db.execute(
        "select status, (select count(*) from outbound_messages where inbound_id = ? and kind != 'holding')"
        " from inbound_messages where id = ?",
        [inbound_id, inbound_id],
    ).fetchone()
    if row is None or row[0] != PENDING or row[1]:
        raise AnsweredMeanwhile(f"inbound message {inbound_id} was answered before its holding reply")


def _waiting_fence(inbound_id: int) -> Callable[[sqlite_utils.Database], None]:
    return lambda db: _still_waiting(db, inbound_id)
