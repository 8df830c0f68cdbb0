"""``WhatsAppRuntime``: the objects of the WhatsApp area for one process, built once from settings.

The composition root (``bot.services``) builds it for the web areas (webhooks, chat, suggestions),
``python -m bot chat`` and ``python -m bot worker`` alike; none of its pieces holds shared state (that is
in the store), so any number of processes may build one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.conversation.engine import ConversationEngine, Turn
from bot.conversation.history import ConversationHistory
from bot.conversation.prompt_budget import PromptBudget
from bot.conversation.suggestions import SuggestionWriter
from bot.inbound import InboundMessage, InboundQueue
from bot.inbound.spool import InboundSpool
from bot.inbound.wakeup import WakeChannel
from bot.llm import LLMService
from bot.messaging.outbox import Outbox
from bot.messaging.sender import SendPolicy, WhatsAppSender
from bot.messaging.twilio_gateway import SendKind, TwilioGateway
from bot.store import Store
from bot.whatsapp.holding import HoldingReplies
from bot.whatsapp.settings import WhatsAppSettings
from bot.whatsapp.worker import ConversationWorker, WorkerPool

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/webhook/twilio/status"


@dataclass
class WhatsAppRuntime:
    settings: WhatsAppSettings
    store: Store
    queue: InboundQueue
    history: ConversationHistory
    engine: ConversationEngine
    suggestions: SuggestionWriter
    outbox: Outbox
    sender: WhatsAppSender
    worker: ConversationWorker
    holding: HoldingReplies | None = None  # None when HOLDING_REPLY_AFTER_S is 0
    pool: WorkerPool | None = None
    _holding_thread: tuple[threading.Thread, threading.Event] | None = field(default=None, repr=False)
    wakeup: WakeChannel | None = None  # hints to the worker threads of the other processes on this database
    spool: InboundSpool | None = None  # where the webhook stores a message while the database's lock is busy
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start_workers(self, threads: int | None = None) -> None:
        """Start background worker threads in this process, and beside them the holding-reply thread (idempotent)."""
        count = self.settings.worker_threads if threads is None else threads
        with self._lock:
            if self.pool is None and count > 0:
                self.pool = WorkerPool(self.worker, count).start()
                if self.wakeup is not None:
                    self.wakeup.listen(self.pool.wake)
                if self.holding is not None:
                    self._holding_thread = self.holding.start()

    def accept(self, message: InboundMessage) -> bool:
        """The webhook's store: into the queue, or the spool while the database's write lock is busy (``spool``);
        True when the queue took it as a new message."""
        if self.spool is None:
            return self.queue.enqueue(message)[1]
        return self.spool.accept(message)

    def start_spool_mover(self) -> None:
        """This process serves the webhook: move what the spool holds into the queue (``InboundSpool.start``)."""
        if self.spool is not None:
            self.spool.start(self.wake_workers)

    def wake_workers(self) -> None:
        """New work is stored: wake this process's idle workers and, through ``wakeup``, every other process's."""
        if self.pool is not None:
            self.pool.wake()
        if self.wakeup is not None:
            self.wakeup.notify()

    def stop_workers(self) -> None:
        """Stop this process's background threads: workers, holding replies, wake-ups and the spool's mover."""
        if self.spool is not None:
            self.spool.stop()
        with self._lock:
            if self._holding_thread is not None:
                thread, stop = self._holding_thread
                stop.set()
                thread.join(5.0)
                self._holding_thread = None
            if self.pool is not None:
                self.pool.stop()
                self.pool = None
            if self.wakeup is not None:
                self.wakeup.close()


def build_whatsapp_runtime(
    store: Store,
    llm: LLMService,
    settings: WhatsAppSettings,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    send_policy: SendPolicy | None = None,
) -> WhatsAppRuntime:
    """Wire the area together (called by ``bot.services``, which parsed ``settings``)."""
    gateway = twilio_gateway(settings)
    if gateway is None:
        log.warning(
            "WhatsApp SANDBOX OUTBOX: TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / TWILIO_WHATSAPP_NUMBER not all set, "
            "so replies are kept in outbound_messages (status 'sandbox') instead of being sent."
        )
    callback = settings.public_base_url + STATUS_CALLBACK_PATH if settings.public_base_url else None
    queue = InboundQueue(store, clock)
    history = ConversationHistory(store, clock)
    budget = PromptBudget(settings.message_max_chars, settings.history_token_budget)
    engine = ConversationEngine(llm, history, budget)
    outbox = Outbox(store, clock)
    policy = send_policy or SendPolicy(in_flight_grace_s=settings.timeout_s + 1)
    sender = WhatsAppSender(outbox, gateway, callback, policy, clock, sleep)
    worker = ConversationWorker(store, queue, engine, outbox, sender, settings, clock)
    holding = None
    if settings.holding_after_s > 0:
        holding = HoldingReplies(
            store,
            outbox,
            sender,
            settings.holding_after_s,
            language_of=lambda customer_id, text: engine.language_of(Turn(customer_id=customer_id, text=text)),
            is_artisan=lambda number: worker.dispatch is not None and worker.dispatch.is_artisan(number),
            clock=clock,
        )
    return WhatsAppRuntime(
        settings=settings,
        store=store,
        queue=queue,
        history=history,
        engine=engine,
        suggestions=SuggestionWriter(llm, history, budget),
        outbox=outbox,
        sender=sender,
        worker=worker,
        holding=holding,
        wakeup=WakeChannel.beside(store.path),
        spool=InboundSpool.beside(queue),
    )


def twilio_gateway(settings: WhatsAppSettings) -> TwilioGateway | None:
    """The Twilio client of these settings, or None when they do not allow sending."""
    if not settings.can_send:
        return None
    return TwilioGateway(
        settings.account_sid or "",
        settings.auth_token or "",
        settings.whatsapp_number or "",
        api_base=settings.api_base,
        timeout_s=settings.timeout_s,
        pool_size=settings.worker_threads,  # one kept connection per thread that may send at once
    )


def admin_whatsapp_sender(settings: WhatsAppSettings, admin_number: str | None) -> Callable[[str], None] | None:
    """A ``send_admin_whatsapp(text)`` for admin alerts, or None without Twilio credentials or a number.

    It raises when Twilio does not accept the message, so the alert sinks retry it later.
    """
    gateway = twilio_gateway(settings)
    if not (admin_number and gateway):
        return None

    def send(text: str) -> None:
        outcome = gateway.send(admin_number, text)
        if outcome.kind is not SendKind.ACCEPTED:
            raise RuntimeError(f"Twilio did not accept the admin alert: {outcome.reason or outcome.kind.value}")

    return send
