"""``ConversationWorker``: takes one stored message at a time and sees it through to exactly one reply.

For a claimed message (lease held, fenced by its token)::

    given up earlier? ──yes──> deliver the recorded apology ──settled──> failed (with the reason)
          │ no
    from an artisan of the directory? ──yes──> dispatch.handle_artisan_message (offer answers) ──settled──> done
          │ no
    reply already recorded? ──yes──> deliver what is not yet with Twilio ──all settled──> done
          │ no
    24-hour window closed? ──yes──> expired (recorded, nothing sent: WhatsApp would refuse it)
          │ no
    unanswered a whole window since its own receipt? ──yes──> failed (the customer's next messages go on)
          │ no
    a status question or "cancel" about a confirmed request? ──yes──> dispatch.reply_to_customer, delivered
          │ no
    engine.decide ──AllProvidersFailed──> every provider refused the message itself (content policy, bad
          │                               request, too long)? give up: apology asking to rephrase, failed
          │                               else one holding reply (once per message), deferred with backoff
          │ ok
    one transaction: turn + reply parts recorded ──> deliver ──> done (or deferred until Twilio takes them)
          └── the turn confirmed a request? ──> dispatch.start (``Dispatch.tick`` starts any this misses)

An unexpected exception defers the message with a growing wait; after ``INBOUND_MAX_ERRORS`` of them it is
given up with the same apology. Without these exits one bad message would hold back every later message of
its customer, since only the oldest pending message of a customer is claimable.

While a message is worked on, a ``LeaseHeartbeat`` renews its lease every ``INBOUND_HEARTBEAT_S``, so a
live worker keeps it through a slow model call and the lease itself can be short. A crash anywhere leaves
the message pending; the dead worker's heartbeat dies with it, so within ``INBOUND_LEASE_S`` another worker
claims it and the recorded state says where to resume: the model is asked again only if no reply was
recorded, and a recorded reply is sent once (see ``WhatsAppSender`` for the in-flight window).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import sqlite_utils

from bot.conversation.engine import ConversationEngine, Turn, refused_for_its_content
from bot.conversation.fixed_replies import holding_reply, not_processed_reply
from bot.inbound import ClaimedMessage, InboundQueue, LeaseLost
from bot.inbound.heartbeat import LeaseHeartbeat
from bot.inbound.queue import EXPIRED, FAILED
from bot.llm import AllProvidersFailed
from bot.logs import request_id_scope
from bot.messaging.outbox import Outbox
from bot.messaging.sender import WhatsAppSender
from bot.messaging.split import split_message
from bot.redaction import redact_secrets
from bot.store import Store
from bot.whatsapp.settings import WhatsAppSettings

if TYPE_CHECKING:
    from bot.dispatch import Dispatch

log = logging.getLogger(__name__)

LLM_RETRY_BASE_S = 5.0  # first wait after every provider failed; doubles per attempt
LLM_RETRY_MAX_S = 120.0  # a recovered provider is noticed within two minutes at worst
PROBE_ALLOWANCE_S = 1.0  # after a cooldown ends, the time its probe (one short call) has to bring it back
ERROR_RETRY_S = 30.0  # after an unexpected error (a bug, a locked database): first wait, doubling per error
ERROR_RETRY_MAX_S = 600.0
IDLE_POLL_S = 0.5  # an idle worker looks for work this often (other processes enqueue without waking us)
ERROR_LOOP_MAX_WAIT_S = 10.0


class ConversationWorker:
    def __init__(
        self,
        store: Store,
        queue: InboundQueue,
        engine: ConversationEngine,
        outbox: Outbox,
        sender: WhatsAppSender,
        settings: WhatsAppSettings,
        clock: Callable[[], float] = time.time,
        dispatch: Dispatch | None = None,
    ) -> None:
        self.store = store
        self.dispatch = dispatch  # set by the composition root; None: every message is a customer's
        self.queue = queue
        self.engine = engine
        self.outbox = outbox
        self.sender = sender
        self.settings = settings
        self.clock = clock

    # --- driving ------------------------------------------------------------------------------------------

    def process_once(self, owner: str | None = None, customer_id: str | None = None) -> bool:
        """Claim and process one due message (of ``customer_id`` only, when given); False when none is due."""
        claim = self.queue.claim(owner or worker_name(), self.settings.lease_s, customer_id)
        if claim is None:
            return False
        # Renewed while this thread works on the claim, however long the model takes; stopped on every exit. The
        # lines logged meanwhile, and the model calls, carry the message's MessageSid as their request id.
        heartbeat = LeaseHeartbeat(self.queue, claim, self.settings.lease_s, self.settings.heartbeat_s)
        with request_id_scope(claim.message.message_sid), heartbeat:
            try:
                self._process(claim, heartbeat)
            except LeaseLost as exc:
                log.warning("%s; its new holder finishes it", exc)
            except Exception as exc:  # a bug or a database error must not lose the message: retry later
                log.exception("processing inbound message %s failed", claim.id)
                reason = redact_secrets(f"{type(exc).__name__}: {exc}", known_secrets=self.settings.secrets)
                try:
                    self._after_error(claim, reason)
                except LeaseLost as lost:
                    log.warning("%s; its new holder finishes it", lost)
                except Exception:  # noqa: BLE001 - the lease will expire and another claim will retry
                    log.exception("could not defer inbound message %s", claim.id)
        return True

    def drain(self, timeout_s: float = 30.0, customer_id: str | None = None) -> int:
        """Process due messages until none is due (or ``timeout_s`` passes); returns how many were taken."""
        deadline = time.monotonic() + timeout_s
        taken = 0
        while time.monotonic() < deadline and self.process_once(customer_id=customer_id):
            taken += 1
        return taken

    def run(self, stop: threading.Event, wake: WakeUps | None = None) -> None:
        """Loop until ``stop`` is set: process what is due, else sleep until the next due time or a wake-up."""
        wake = wake or WakeUps()
        errors = 0
        while not stop.is_set():
            try:
                if self.process_once():
                    errors = 0
                    continue
                due = self.queue.next_due_at()
                errors = 0
            except Exception:  # noqa: BLE001 - e.g. database locked past busy_timeout: keep the thread alive
                log.exception("worker loop error")
                due, errors = None, errors + 1
            wait = IDLE_POLL_S if due is None else min(max(due - self.clock(), 0.01), IDLE_POLL_S)
            if errors:
                wait = min(IDLE_POLL_S * 2**errors, ERROR_LOOP_MAX_WAIT_S)  # a broken database is not hammered
            wake.wait(wait)

    # --- one message --------------------------------------------------------------------------------------

    def _process(self, claim: ClaimedMessage, heartbeat: LeaseHeartbeat) -> None:
        if claim.give_up_reason is not None:  # a previous holder gave up and recorded the apology
            self._send_apology(claim)
            return
        if self._from_artisan(claim):  # an answer to an offer, never a customer's conversation
            assert self.dispatch is not None
            answered = self.dispatch.handle_artisan_message(claim.id, claim.message, self._fence(claim))
            if answered.delivery.settled:
                self.queue.complete(claim)
            else:
                retry_at = answered.delivery.retry_at or self.clock() + ERROR_RETRY_S
                self.queue.defer(claim, retry_at, "dispatch reply waiting for Twilio")
            return
        replies = self.outbox.for_inbound(claim.id, kind="reply")
        if replies:  # a previous holder recorded the reply and died before it was all sent
            if self._settle(claim, replies, "reply"):
                self.queue.complete(claim)
            return
        if self._window_closed(claim):
            self.queue.finish(claim, EXPIRED, "WhatsApp 24-hour window closed before an answer could be sent")
            return
        if self.clock() > claim.received_at + self.settings.window_s:
            # The window is still open only because the customer wrote since: their newer messages come first.
            hours = f"{self.settings.window_s / 3600:g}"
            self._give_up(claim, f"not answered within {hours} hours of its receipt; later messages go on")
            return
        if self._answered_by_dispatch(claim):
            # "Where is my plumber?" / "cancel it" about a confirmed request: answered without a model.
            if self._settle(claim, self.outbox.for_inbound(claim.id, kind="reply"), "reply"):
                self.queue.complete(claim)
            return
        turn = _turn(claim)
        try:
            decision = self.engine.decide(turn)
        except AllProvidersFailed as exc:
            heartbeat.raise_if_lost()
            if refused_for_its_content(exc):
                self._give_up(claim, f"every provider refused the message itself: {exc}", apology_to=turn)
            else:
                self._hold(claim, turn, exc)
            return
        heartbeat.raise_if_lost()  # taken over during the model call: the new holder asks again
        parts = split_message(decision.reply, self.settings.max_chars)
        with self.store.immediate() as db:
            self.queue.check_lease(db, claim, extend_s=self.settings.lease_s)
            request = self.engine.commit(db, decision)
            self._add_outbound(db, claim, "reply", parts, provider=decision.provider)
            # The answer is here: a holding reply Twilio has not been handed yet is now pointless.
            self.outbox.supersede(db, claim.id, kind="holding", reason="superseded by the reply")
        log.info("inbound message %s answered by %s: %d part(s) to send", claim.id, decision.provider, len(parts))
        settled = self._settle(claim, self.outbox.for_inbound(claim.id, kind="reply"), "reply")
        if settled:
            self.queue.complete(claim)
        if request.status == "confirmed" and request.id is not None:
            self._start_dispatch(request.id)

    def _from_artisan(self, claim: ClaimedMessage) -> bool:
        message = claim.message
        return (
            self.dispatch is not None
            and message.channel == "whatsapp"
            and self.dispatch.is_artisan(message.from_number or message.customer_id)
        )

    def _answered_by_dispatch(self, claim: ClaimedMessage) -> bool:
        """True when dispatch recorded the reply (a status question or a cancellation of a confirmed request)."""
        if self.dispatch is None or claim.message.channel != "whatsapp":
            return False
        return self.dispatch.reply_to_customer(claim.id, claim.message, self._fence(claim)) is not None

    def _start_dispatch(self, request_id: int) -> None:
        """Offer a just-confirmed request to artisans; a failure here only delays it until the next
        ``Dispatch.tick``, which starts every confirmed request nobody started."""
        if self.dispatch is None:
            return
        try:
            self.dispatch.start(request_id)
        except Exception:  # noqa: BLE001 - the customer's reply is settled; the tick retries the dispatch
            log.exception("starting the dispatch of request %s failed; the dispatch tick will start it", request_id)

    def _give_up(
        self, claim: ClaimedMessage, reason: str, apology_to: Turn | None = None, errors: int | None = None
    ) -> None:
        """Stop trying to answer this message: record why (and, for ``apology_to``, a reply asking the customer
        to say it differently) in one fenced transaction, then send it and finish the message as failed."""
        reason = redact_secrets(reason, known_secrets=self.settings.secrets)
        with self.store.immediate() as db:
            self.queue.check_lease(db, claim, extend_s=self.settings.lease_s)
            self.outbox.supersede(db, claim.id, kind="holding", reason="superseded by the apology")
            if apology_to is not None:
                self._add_outbound(db, claim, "apology", [not_processed_reply(self.engine.language_of(apology_to))])
            self.queue.give_up(db, claim, reason, errors)
        log.warning("gave up inbound message %s: %s", claim.id, reason)
        self._send_apology(replace(claim, give_up_reason=reason))

    def _add_outbound(
        self,
        db: sqlite_utils.Database,
        claim: ClaimedMessage,
        kind: str,
        bodies: list[str],
        provider: str | None = None,
    ) -> None:
        """Record what this message gets back (reply, holding or apology), once per kind, inside ``db``."""
        message = claim.message
        self.outbox.add(
            db,
            key=f"{claim.id}:{kind}",
            inbound_id=claim.id,
            customer_id=message.customer_id,
            to_number=message.from_number or message.customer_id,
            kind=kind,
            bodies=bodies,
            provider=provider,
        )

    def _send_apology(self, claim: ClaimedMessage) -> None:
        if self._settle(claim, self.outbox.for_inbound(claim.id, kind="apology"), "apology"):
            self.queue.finish(claim, FAILED, claim.give_up_reason or "given up")

    def _after_error(self, claim: ClaimedMessage, reason: str) -> None:
        """An unexpected exception: try again later, until the message has failed ``max_errors`` times."""
        errors = claim.errors + 1
        if errors < self.settings.max_errors:
            wait = min(ERROR_RETRY_S * 2 ** (errors - 1), ERROR_RETRY_MAX_S)
            self.queue.defer(claim, self.clock() + wait, reason, error=True)
            return
        if claim.give_up_reason is not None:  # sending the apology is what keeps failing
            self.queue.finish(claim, FAILED, f"{claim.give_up_reason}; the apology was not sent: {reason}")
            return
        given_up = f"gave up after {errors} errors; the last: {reason}"
        try:
            self._give_up(claim, given_up, apology_to=_turn(claim), errors=errors)
        except LeaseLost:
            raise
        except Exception:  # noqa: BLE001 - whatever breaks the message may break the apology too
            log.exception("could not send the apology for inbound message %s", claim.id)
            self.queue.finish(claim, FAILED, given_up)

    def _hold(self, claim: ClaimedMessage, turn: Turn, failure: AllProvidersFailed) -> None:
        """No provider answered: one holding reply per message, then try again later: after a growing backoff,
        or, when no provider could even be asked (all cooling), as soon as the first cooldown ends and its probe
        has had a moment, so a message held through an outage is answered when a provider is back, not up to a
        backoff later."""
        holding = self.outbox.for_inbound(claim.id, kind="holding")
        if not holding:
            with self.store.immediate() as db:
                self.queue.check_lease(db, claim, extend_s=self.settings.lease_s)
                self._add_outbound(db, claim, "holding", [holding_reply(self.engine.language_of(turn))])
            holding = self.outbox.for_inbound(claim.id, kind="holding")
        delivery = self.sender.deliver(holding, self._fence(claim))
        retry_at = self.clock() + min(LLM_RETRY_BASE_S * 2 ** (claim.attempts - 1), LLM_RETRY_MAX_S)
        back_in = self.engine.llm.seconds_until_usable() if not failure.attempts else None
        if back_in is not None:  # every provider was passed over: none was asked, none is worth asking sooner
            retry_at = min(retry_at, self.clock() + back_in + PROBE_ALLOWANCE_S)
        if not delivery.settled and delivery.retry_at is not None:
            retry_at = min(retry_at, delivery.retry_at)
        self.queue.defer(claim, retry_at, redact_secrets(str(failure), known_secrets=self.settings.secrets))

    def _settle(self, claim: ClaimedMessage, rows: list, what: str) -> bool:
        """Deliver ``rows``, then settle the holding reply they replace; True when ``rows`` are settled, else the
        message is deferred until Twilio is ready.

        A holding reply still in flight never holds the message back: it may be going out right now from the
        holding-reply thread (``bot.whatsapp.holding``), which records its fate; one a crash left in flight is
        looked up at Twilio once its send is surely over (never resent), else left as it is."""
        delivery = self.sender.deliver(rows, self._fence(claim))
        if delivery.settled:
            self.sender.settle_dropped(self.outbox.for_inbound(claim.id, kind="holding"), f"superseded by the {what}")
            return True
        self.queue.defer(claim, delivery.retry_at or self.clock() + ERROR_RETRY_S, f"{what} waiting for Twilio")
        return False

    def _fence(self, claim: ClaimedMessage):
        return lambda db: self.queue.check_lease(db, claim, extend_s=self.settings.lease_s)

    def _window_closed(self, claim: ClaimedMessage) -> bool:
        if claim.message.channel != "whatsapp":
            return False
        last = self.store.db.execute(
            "select max(received_at) from inbound_messages where customer_id = ? and channel = 'whatsapp'",
            [claim.message.customer_id],
        ).fetchone()[0]
        return self.clock() > (last or claim.received_at) + self.settings.window_s


def _turn(claim: ClaimedMessage) -> Turn:
    message = claim.message
    return Turn(
        customer_id=message.customer_id,
        text=message.body,
        channel=message.channel,
        profile_name=message.profile_name,
        media=message.media,
        latitude=message.latitude,
        longitude=message.longitude,
        location_label=message.form.get("Address") or message.form.get("Label") or None,
        inbound_id=claim.id,
        request_id=message.message_sid,
    )


class WakeUps:
    """Wakes one idle worker per new message, not every one: each woken worker tries a claim, and dozens of them
    trying at once for every message stored kept the write lock busy under the webhooks' feet."""

    def __init__(self, limit: int = 1) -> None:
        self._ready = threading.Condition()
        self._pending = 0  # wake-ups not yet taken by a worker
        self._limit = limit  # more than one per worker would only wake workers with nothing to do

    def notify(self) -> None:
        with self._ready:
            self._pending = min(self._pending + 1, self._limit)
            self._ready.notify()

    def notify_all(self) -> None:
        with self._ready:
            self._pending = self._limit
            self._ready.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a wake-up; True when one was taken."""
        with self._ready:
            if not self._pending:
                self._ready.wait(timeout)
            if self._pending:
                self._pending -= 1
                return True
            return False


class WorkerPool:
    """Worker threads inside one process; ``wake()`` lets a webhook start them at once on new work."""

    def __init__(self, worker: ConversationWorker, threads: int) -> None:
        self.worker = worker
        self.size = threads
        self._stop = threading.Event()
        self._wake = WakeUps(threads)
        self._threads: list[threading.Thread] = []

    def start(self) -> WorkerPool:
        for index in range(self.size):
            thread = threading.Thread(
                target=self.worker.run, args=(self._stop, self._wake), name=f"whatsapp-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def wake(self) -> None:
        self._wake.notify()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()


def worker_name() -> str:
    """host:pid:thread, recorded as the lease owner so an admin can tell who holds a message."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
