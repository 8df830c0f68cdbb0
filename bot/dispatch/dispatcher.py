"""``Dispatch``: a confirmed service request offered to artisans in batches until exactly one takes it.

The dispatch of one request (``request_dispatch.state``) and the request's own status move together::

    request confirmed ──start (once: the request_dispatch row is its key)──> offering, batch 1 offered
        offering ──batch times out / whole batch declined or undeliverable──> next batch offered
        offering ──no artisan left──> exhausted: staff alerted, customer told a person will call
        offering | exhausted ──an artisan accepts an open offer (first wins)──> assigned   [request: assigned]
        no WhatsApp number for the customer, or an unknown trade ──> manual: staff alerted, nobody offered

    request status (staff, customer):  confirmed ─> assigned ─> in_progress ─> done
                                           └──────────┴────────────┴──> cancelled   (assigned -> assigned: reassign)

Every decision is one ``BEGIN IMMEDIATE`` transaction that reads the state it changes, so two artisans accepting
in the same second on two workers are serialised and the second finds the request taken; the messages a
decision produces are recorded in the outbox in that same transaction, under keys that name the fact
(``dispatch:offer:<offer id>``, ``<inbound id>:dispatch:reply``, ...), and sent afterwards. A crash anywhere
leaves either nothing or the whole decision with its messages; the messages are then sent once by whoever
delivers next (``deliver_pending``, run by ``tick``), and a send whose answer was lost is looked up at Twilio
before any resend.

Open offers of earlier batches stay open: a late "OUI" still wins while nobody has the request. An offer goes
out as free text inside the artisan's 24-hour window and as the approved template (TWILIO_OFFER_CONTENT_SID)
outside it; without a template such an artisan is skipped, with the reason recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.conversation.history import ConversationHistory
from bot.conversation.language import detect_language
from bot.dispatch.answers import Answer, AnswerKind, asks_for_status, asks_to_cancel, parse_artisan_answer
from bot.dispatch.directory import TRADES, ArtisanDirectory
from bot.dispatch.errors import IllegalTransition, InvalidInput, NotFound
from bot.dispatch.quartiers import QuartierTable
from bot.dispatch.request_book import RequestBook
from bot.dispatch.settings import DispatchSettings
from bot.dispatch.staff import StaffChannel, WebhookPost, post_json
from bot.dispatch.texts import (
    ARTISAN_TEXTS,
    OFFER_TEMPLATE,
    STAFF_TEXTS,
    customer_text,
    masked,
    render_template,
    trade_label,
)
from bot.inbound import InboundMessage
from bot.messaging.outbox import UNSETTLED, Fence, OutboundMessage, Outbox
from bot.messaging.sender import Delivery, WhatsAppSender
from bot.messaging.split import WHATSAPP_MAX_CHARS
from bot.messaging.templates import ContentTemplate
from bot.store import Store

log = logging.getLogger(__name__)

# Request statuses after confirmation, and which a staff member (or the customer) may move each to.
ACTIVE_STATUSES = ("confirmed", "assigned", "in_progress")
STAFF_STATUSES = ("assigned", "in_progress", "done", "cancelled")
TRANSITIONS: dict[str, frozenset[str]] = {
    "collecting": frozenset({"cancelled"}),
    "awaiting_confirmation": frozenset({"cancelled"}),
    "confirmed": frozenset({"assigned", "cancelled"}),
    "assigned": frozenset({"assigned", "in_progress", "done", "cancelled"}),
    "in_progress": frozenset({"done", "cancelled"}),
    "done": frozenset(),
    "cancelled": frozenset(),
}
OPEN_OFFER = "offered"
ANSWERABLE_OFFERS = ("offered", "declined")  # an artisan who said no may still say yes while nobody has it
RECENT_OFFER_S = 24 * 3600.0  # an answer with no open offer is read against the artisan's offers this recent
ANSWER_MAX_CHARS = 200
NO_FENCE: Fence = lambda db: None  # noqa: E731 - work nobody leases (timers, staff actions)


@dataclass(frozen=True)
class ArtisanReply:
    """What an artisan's message did (``outcome``) and how the reply to it fared with Twilio."""

    outcome: str  # accepted | too_late | already_yours | no_longer_open | declined | unclear | which | no_offer
    request_id: int | None
    reply: str
    delivery: Delivery


@dataclass(frozen=True)
class CustomerReply:
    """A customer message answered by dispatch (a status question, a cancellation), and the reply's delivery."""

    intent: str  # status | cancel
    request_id: int
    reply: str


@dataclass
class TickReport:
    started: list[int] = field(default_factory=list)
    advanced: list[int] = field(default_factory=list)  # requests whose batch timed out (next batch or exhausted)
    undeliverable: int = 0
    delivered: int = 0
    webhooks: int = 0


class Dispatch:
    """The dispatch domain for one process; all its state is in the store."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        sender: WhatsAppSender,
        settings: DispatchSettings | None = None,
        *,
        quartiers: QuartierTable | None = None,
        webhook: WebhookPost | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.sender = sender
        self.settings = settings or DispatchSettings()
        self.clock = clock
        self.quartiers = quartiers or QuartierTable.load(self.settings.quartiers_path)
        self.directory = ArtisanDirectory(store, self.quartiers, clock)
        if webhook is None and self.settings.staff_webhook_url:
            webhook = post_json(self.settings.staff_webhook_url)
        self.staff = StaffChannel(store, outbox, self.settings.staff_whatsapp, webhook, clock)
        self.history = ConversationHistory(store, clock)
        self.requests = RequestBook(store, self.quartiers)

    # --- starting -----------------------------------------------------------------------------------------

    def start(self, request_id: int) -> str | None:
        """Start dispatching a confirmed request (idempotent across processes); returns the dispatch state it
        reached, or None when nothing was started (not confirmed, or started before). Sends what it recorded."""
        with self.store.immediate() as db:
            state = self._start(db, request_id)
        if state is not None:
            self.deliver_pending()
        return state

    def start_confirmed(self) -> list[int]:
        """Start every confirmed request that has no dispatch yet (the safety net behind the confirmation hook)."""
        ids = [
            row[0]
            for row in self.store.db.execute(
                "select s.id from service_requests s where s.status = 'confirmed'"
                " and not exists (select 1 from request_dispatch d where d.request_id = s.id) order by s.id"
            )
        ]
        started = []
        for request_id in ids:
            with self.store.immediate() as db:
                if self._start(db, request_id) is not None:
                    started.append(request_id)
        return started

    def _start(self, db: sqlite_utils.Database, request_id: int) -> str | None:
        request = _request_row(db, request_id)
        if request["status"] != "confirmed":
            return None
        now = self.clock()
        quartier = self.quartiers.find(request["location"])
        inserted = db.execute(
            "insert or ignore into request_dispatch (request_id, state, trade, quartier, batch, started_at, updated_at)"
            " values (?, 'offering', ?, ?, 0, ?, ?)",
            [request_id, request["service_type"], quartier, now, now],
        ).rowcount
        if inserted != 1:
            return None
        words = self._words(request, quartier)
        why_manual = None
        if request["service_type"] not in TRADES:
            why_manual = f"unknown trade {request['service_type']!r}"
        elif not _is_phone(request["customer_id"]):
            why_manual = "no WhatsApp number for the customer (web chat)"
        if why_manual is not None:
            self._set_dispatch(db, request_id, state="manual", deadline=None)
            self._event(db, request_id, "started", note=f"not offered to artisans: {why_manual}")
            self.staff.announce(db, "new_request", request_id, STAFF_TEXTS["manual"].format(**words))
            return "manual"
        note = f"quartier {quartier}" if quartier else f"location {request['location']!r} matches no quartier"
        self._event(db, request_id, "started", note=note)
        self.staff.announce(db, "new_request", request_id, STAFF_TEXTS["new_request"].format(**words))
        return self._advance(db, request_id, reason="first batch")

    # --- batches ------------------------------------------------------------------------------------------

    def _advance(self, db: sqlite_utils.Database, request_id: int, reason: str) -> str:
        """Offer the next batch; with nobody left, the request is exhausted (staff and customer told)."""
        request = _request_row(db, request_id)
        dispatch = _dispatch_row(db, request_id)
        if request["status"] != "confirmed":  # assigned or closed by a path that left the dispatch behind
            self._set_dispatch(
                db, request_id, state="assigned" if request["artisan_id"] else "cancelled", deadline=None
            )
            return "stopped"
        batch = dispatch["batch"] + 1
        if self._offer_batch(db, request, dispatch, batch):
            return "offering"
        self._set_dispatch(db, request_id, state="exhausted", deadline=None)
        counts = dict(
            db.execute(
                "select status = 'skipped', count(*) from dispatch_offers where request_id = ? group by 1", [request_id]
            ).fetchall()
        )
        offered, skipped = counts.get(0, 0), counts.get(1, 0)
        reasons = [f"{offered} artisan(s) offered, none accepted"] if offered else []
        if skipped:
            reasons.append(f"{skipped} not reachable (24-hour window closed and no TWILIO_OFFER_CONTENT_SID)")
        why = "; ".join(reasons) or "no artisan of this trade available"
        self._event(db, request_id, "exhausted", batch=dispatch["batch"], note=f"{why} ({reason})")
        words = self._words(request, dispatch["quartier"])
        self.staff.announce(db, "no_artisan", request_id, STAFF_TEXTS["no_artisan"].format(**words, why=why))
        self._tell_customer(db, request, "exhausted", key=f"dispatch:request:{request_id}:exhausted")
        return "exhausted"

    def _offer_batch(self, db: sqlite_utils.Database, request: dict, dispatch: dict, batch: int) -> int:
        now = self.clock()
        request_id = request["id"]
        offered = 0
        for artisan in self._candidates(db, request_id, request["service_type"], dispatch["quartier"]):
            if offered >= self.settings.batch_size:
                break
            window_open = self._window_open(db, artisan["whatsapp"], now)
            if not window_open and not self.settings.offer_content_sid:
                offer_id = self._insert_offer(db, request_id, artisan["id"], batch, "skipped", template=False)
                self._event(
                    db, request_id, "offer_skipped", artisan_id=artisan["id"], offer_id=offer_id, batch=batch,
                    note="24-hour window closed and no TWILIO_OFFER_CONTENT_SID: free text would be refused",
                )  # fmt: skip
                continue
            offer_id = self._insert_offer(db, request_id, artisan["id"], batch, OPEN_OFFER, template=not window_open)
            variables = self._offer_variables(request, dispatch["quartier"], offer_id)
            template = None if window_open else ContentTemplate(self.settings.offer_content_sid or "", variables)
            self._record(
                db, f"dispatch:offer:{offer_id}", artisan["whatsapp"], "dispatch_offer",
                render_template(OFFER_TEMPLATE, variables), request_id, template=template,
            )  # fmt: skip
            self.directory.mark_offered(db, artisan["id"], now)
            how = "free text" if window_open else "template (24-hour window closed)"
            self._event(db, request_id, "offered", artisan_id=artisan["id"], offer_id=offer_id, batch=batch, note=how)
            offered += 1
        if offered:
            self._set_dispatch(db, request_id, state="offering", batch=batch, deadline=now + self.settings.timeout_s)
        return offered

    def _candidates(self, db: sqlite_utils.Database, request_id: int, trade: str, quartier: str | None) -> list[dict]:
        """Active artisans of ``trade`` serving ``quartier`` (or the whole city) not yet offered this request,
        least recently offered first. A quartier nobody serves, or no quartier, reaches the whole trade."""
        sql = (
            "select a.id, a.name, a.whatsapp from artisans a where a.active = 1"
            " and exists (select 1 from artisan_trades t where t.artisan_id = a.id and t.trade = :trade)"
        )
        serves = (
            " and (exists (select 1 from artisan_quartiers q where q.artisan_id = a.id and q.quartier = :quartier)"
            " or not exists (select 1 from artisan_quartiers q where q.artisan_id = a.id))"
        )
        params = {"trade": trade, "quartier": quartier, "request": request_id}
        if quartier is not None and db.execute(f"select exists ({sql}{serves})", params).fetchone()[0]:
            sql += serves
        sql += (
            " and not exists (select 1 from dispatch_offers o where o.request_id = :request and o.artisan_id = a.id)"
            " order by a.last_offered_at is not null, a.last_offered_at, a.id"
        )
        return [dict(zip(("id", "name", "whatsapp"), row, strict=True)) for row in db.execute(sql, params)]

    def _offer_variables(self, request: dict, quartier: str | None, offer_id: int) -> dict[str, str]:
        return {
            "1": str(request["id"]),
            "2": trade_label(request["service_type"]),
            "3": _place(request, quartier),
            "4": masked(request["description"]),
            "5": masked(request["urgency"], 80),
            "6": str(offer_id),
        }

    # --- timers -------------------------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """One pass of the clock process (every ~30 s): start confirmed requests nobody started, move past failed
        offers and timed-out batches, send what is recorded, post staff announcements. Safe in any number of
        processes at once."""
        report = TickReport(started=self.start_confirmed())
        report.undeliverable = self._drop_undeliverable()
        now = self.clock()
        due = [
            row[0]
            for row in self.store.db.execute(
                "select request_id from request_dispatch where state = 'offering' and deadline <= ? order by deadline",
                [now],
            )
        ]
        for request_id in due:
            with self.store.immediate() as db:
                dispatch = _dispatch_row(db, request_id)
                if dispatch["state"] != "offering" or dispatch["deadline"] is None or dispatch["deadline"] > now:
                    continue  # another process moved it on
                minutes = f"{self.settings.timeout_s / 60:g}"
                self._event(
                    db, request_id, "batch_timeout", batch=dispatch["batch"], note=f"no answer in {minutes} min"
                )
                self._advance(db, request_id, reason=f"batch {dispatch['batch']} timed out")
                report.advanced.append(request_id)
        report.delivered = self.deliver_pending()
        report.webhooks = self.staff.deliver_webhooks()
        return report

    def _drop_undeliverable(self) -> int:
        """Offers whose message Twilio refused or could not deliver no longer count as open; a batch left with no
        open offer is followed at once by the next."""
        rows = self.store.db.execute(
            "select o.id, o.request_id, coalesce(m.error_reason, m.status) from dispatch_offers o"
            " join outbound_messages m on m.idempotency_key = o.outbound_key"
            " where o.status = 'offered' and m.status in ('failed', 'undelivered')"
        ).fetchall()
        for offer_id, request_id, why in rows:
            with self.store.immediate() as db:
                moved = db.execute(
                    "update dispatch_offers set status = 'undeliverable' where id = ? and status = 'offered'",
                    [offer_id],
                ).rowcount
                if moved:
                    offer = _offer_row(db, offer_id)
                    self._event(
                        db, request_id, "undeliverable", artisan_id=offer["artisan_id"], offer_id=offer_id,
                        batch=offer["batch"], note=str(why)[:200],
                    )  # fmt: skip
                    self._advance_if_batch_closed(db, request_id, f"batch {offer['batch']} could not be delivered")
        return len(rows)

    def _advance_if_batch_closed(self, db: sqlite_utils.Database, request_id: int, reason: str) -> None:
        dispatch = _dispatch_row(db, request_id)
        if dispatch["state"] != "offering":
            return
        still_open = db.execute(
            "select count(*) from dispatch_offers where request_id = ? and batch = ? and status = 'offered'",
            [request_id, dispatch["batch"]],
        ).fetchone()[0]
        if not still_open:
            self._advance(db, request_id, reason=reason)

    # --- artisans' answers --------------------------------------------------------------------------------

    def is_artisan(self, number: str | None) -> bool:
        """True for a number of the directory (active or paused): its messages go to ``handle_artisan_message``."""
        return bool(number) and self.directory.find_by_number(number or "") is not None

    def handle_artisan_message(self, inbound_id: int, message: InboundMessage, fence: Fence = NO_FENCE) -> ArtisanReply:
        """Apply an artisan's message (an answer to an offer, or anything else) and send its one reply.

        ``fence`` checks the caller still holds the inbound message (the worker's lease); the decision and every
        message it produces are one transaction behind it. Taken again after a crash, the same message finds its
        reply recorded and only sends what is not yet sent. Notices to others (customer, other artisans) are sent
        here too; what cannot go now is sent by ``tick``.
        """
        artisan = self.directory.find_by_number(message.from_number or message.customer_id)
        if artisan is None:
            raise NotFound(f"{message.customer_id} is not an artisan of the directory")
        key = f"{inbound_id}:dispatch:reply"
        with self.store.immediate() as db:
            fence(db)
            known = db.execute(
                "select body, request_id from outbound_messages where idempotency_key = ?", [key]
            ).fetchone()
            if known is None:
                outcome, request_id, reply = self._answer(db, artisan.id, inbound_id, message)
                self._record(db, key, artisan.whatsapp, "dispatch_reply", reply, request_id, inbound_id=inbound_id)
                self._event_answer(db, outcome, request_id, artisan.id, inbound_id)
            else:
                outcome, (reply, request_id) = "repeat", known
        rows = self.outbox.for_inbound(inbound_id, kind="dispatch_reply")
        delivery = self._deliver_rows(rows, fence)
        self.deliver_pending()
        return ArtisanReply(outcome, request_id, reply, delivery)

    def _answer(
        self, db: sqlite_utils.Database, artisan_id: int, inbound_id: int, message: InboundMessage
    ) -> tuple[str, int | None, str]:
        answer = parse_artisan_answer(message.body, message.form.get("ButtonPayload"))
        offer, problem = self._target_offer(db, artisan_id, answer)
        if offer is None:
            return problem or ("no_offer", None, ARTISAN_TEXTS["no_offer"])
        request_id = offer["request_id"]
        if answer.kind is AnswerKind.UNCLEAR:
            return "unclear", request_id, ARTISAN_TEXTS["help"].format(id=request_id)
        words = (message.form.get("ButtonPayload") or message.body or "")[:ANSWER_MAX_CHARS]
        if answer.kind is AnswerKind.ACCEPT:
            return self._accept(db, offer, artisan_id, inbound_id, words)
        return self._decline(db, offer, artisan_id, words)

    def _target_offer(
        self, db: sqlite_utils.Database, artisan_id: int, answer: Answer
    ) -> tuple[dict | None, tuple[str, int | None, str] | None]:
        """The offer an answer is about: the button's, the one numbered in the text, the only open one, or the
        latest recent one; else why none (several open: ask which)."""
        if answer.offer_id is not None:
            offer = _one(
                db, "select * from dispatch_offers where id = ? and artisan_id = ?", [answer.offer_id, artisan_id]
            )
            if offer is not None:
                return offer, None
        if answer.request_ref is not None:  # "OUI 12"; a number naming none of theirs ("dans 10 min") is ignored
            offer = _one(
                db,
                "select * from dispatch_offers where request_id = ? and artisan_id = ? and status != 'skipped'",
                [answer.request_ref, artisan_id],
            )
            if offer is not None:
                return offer, None
        open_offers = db.execute(
            "select o.id, o.request_id from dispatch_offers o join service_requests s on s.id = o.request_id"
            " where o.artisan_id = ? and o.status = 'offered' and s.status = 'confirmed' order by o.id",
            [artisan_id],
        ).fetchall()
        if len(open_offers) == 1:
            return _offer_row(db, open_offers[0][0]), None
        if len(open_offers) > 1:
            refs = [request_id for _, request_id in open_offers]
            text = ARTISAN_TEXTS["which"].format(refs=", ".join(f"n°{ref}" for ref in refs), first=refs[0])
            return None, ("which", None, text)
        latest = _one(
            db,
            "select * from dispatch_offers where artisan_id = ? and status != 'skipped' and offered_at >= ?"
            " order by id desc limit 1",
            [artisan_id, self.clock() - RECENT_OFFER_S],
        )
        return latest, None

    def _accept(
        self, db: sqlite_utils.Database, offer: dict, artisan_id: int, inbound_id: int | None, words: str
    ) -> tuple[str, int, str]:
        request = _request_row(db, offer["request_id"])
        request_id = request["id"]
        if request["artisan_id"] == artisan_id and request["status"] in ("assigned", "in_progress"):
            return (
                "already_yours",
                request_id,
                ARTISAN_TEXTS["already_yours"].format(id=request_id, customer=request["customer_id"]),
            )
        if request["status"] != "confirmed" or offer["status"] not in ANSWERABLE_OFFERS:
            if request["status"] in ("assigned", "in_progress", "done") and request["artisan_id"] != artisan_id:
                self._answered(db, offer["id"], "taken" if offer["status"] == OPEN_OFFER else offer["status"], words)
                return "too_late", request_id, ARTISAN_TEXTS["too_late"].format(id=request_id)
            return "no_longer_open", request_id, ARTISAN_TEXTS["no_longer_open"].format(id=request_id)
        # The winner: the request is still confirmed inside this write transaction, so nobody else has it.
        now = self.clock()
        moved = db.execute(
            "update service_requests set status = 'assigned', artisan_id = ?, assigned_at = ?, status_at = ?,"
            " updated_at = ? where id = ? and status = 'confirmed'",
            [artisan_id, now, now, now, request_id],
        ).rowcount
        if moved != 1:  # cannot happen under BEGIN IMMEDIATE; never assign on a stale read
            raise RuntimeError(f"request {request_id} moved while its acceptance was being written")
        self._answered(db, offer["id"], "accepted", words)
        self._set_dispatch(db, request_id, state="assigned", deadline=None)
        self._event(
            db, request_id, "accepted", artisan_id=artisan_id, offer_id=offer["id"], batch=offer["batch"],
            actor=f"artisan:{artisan_id}", inbound_id=inbound_id,
        )  # fmt: skip
        self._event(
            db, request_id, "status", from_status="confirmed", to_status="assigned", artisan_id=artisan_id,
            actor=f"artisan:{artisan_id}", note="accepted the offer", inbound_id=inbound_id,
        )  # fmt: skip
        self._close_offers(db, request_id, "taken", except_offer=offer["id"])
        self._tell_customer_assigned(db, request, artisan_id, key=f"dispatch:offer:{offer['id']}:won:customer")
        return "accepted", request_id, ARTISAN_TEXTS["won"].format(**self._job_words(request))

    def _decline(self, db: sqlite_utils.Database, offer: dict, artisan_id: int, words: str) -> tuple[str, int, str]:
        request_id = offer["request_id"]
        request = _request_row(db, request_id)
        if request["artisan_id"] == artisan_id and request["status"] in ("assigned", "in_progress"):
            text = ARTISAN_TEXTS["already_yours"].format(id=request_id, customer=request["customer_id"])
            return "already_yours", request_id, text + " Si vous ne pouvez plus y aller, appelez l'équipe Djobea."
        if offer["status"] == OPEN_OFFER:
            self._answered(db, offer["id"], "declined", words)
            self._event(db, request_id, "declined", artisan_id=artisan_id, offer_id=offer["id"], batch=offer["batch"],
                        actor=f"artisan:{artisan_id}")  # fmt: skip
            self._advance_if_batch_closed(db, request_id, f"every artisan of batch {offer['batch']} declined")
        return "declined", request_id, ARTISAN_TEXTS["declined"]

    def _answered(self, db: sqlite_utils.Database, offer_id: int, status: str, words: str) -> None:
        db.execute(
            "update dispatch_offers set status = ?, answered_at = coalesce(answered_at, ?), answer = ? where id = ?",
            [status, self.clock(), words, offer_id],
        )

    def _event_answer(
        self, db: sqlite_utils.Database, outcome: str, request_id: int | None, artisan_id: int, inbound_id: int
    ) -> None:
        if request_id is not None and outcome in ("too_late", "no_longer_open", "already_yours"):
            self._event(db, request_id, "late_answer", artisan_id=artisan_id, actor=f"artisan:{artisan_id}",
                        note=outcome, inbound_id=inbound_id)  # fmt: skip

    # --- status changes (staff, customer) -----------------------------------------------------------------

    def change_status(
        self,
        request_id: int,
        target: str,
        actor: str,
        note: str | None = None,
        artisan_id: int | None = None,
        notify_customer: bool = True,
    ) -> dict[str, Any]:
        """Move a request to ``target`` (assigned, in_progress, done, cancelled) for ``actor`` (``admin:<name>``,
        ``customer``); ``IllegalTransition`` says why not, ``InvalidInput`` names a bad field, ``NotFound`` an
        unknown request or artisan. ``assigned`` needs ``artisan_id`` (staff assign by hand, or reassign).
        Returns the request row as stored."""
        with self.store.immediate() as db:
            self._change_status(db, request_id, target, actor, note, artisan_id, notify_customer)
            stored = _request_row(db, request_id)
        self.deliver_pending()
        return stored

    def _change_status(
        self,
        db: sqlite_utils.Database,
        request_id: int,
        target: str,
        actor: str,
        note: str | None,
        artisan_id: int | None,
        notify_customer: bool,
    ) -> None:
        if target not in STAFF_STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STAFF_STATUSES)}, got {str(target)[:40]!r}")
        if note is not None and not isinstance(note, str):
            raise InvalidInput("note", "must be a string")
        if target == "assigned":
            if artisan_id is None:
                raise InvalidInput("artisan_id", "required to assign a request (the artisan who does the job)")
            if db.execute("select 1 from artisans where id = ?", [artisan_id]).fetchone() is None:
                raise NotFound(f"no artisan {artisan_id}")
        request = _request_row(db, request_id)
        current = request["status"]
        _check_transition(request_id, current, target, request["artisan_id"], artisan_id)
        now = self.clock()
        values: dict[str, Any] = {"status": target, "status_at": now, "updated_at": now}
        if target == "assigned":
            values.update(artisan_id=artisan_id, assigned_at=now)
        db["service_requests"].update(request_id, values)
        event_id = self._event(
            db, request_id, "status", from_status=current, to_status=target, actor=actor,
            artisan_id=artisan_id if target == "assigned" else request["artisan_id"], note=(note or "")[:500] or None,
        )  # fmt: skip
        self._after_status(db, request, target, artisan_id, event_id, notify_customer)

    def _after_status(
        self,
        db: sqlite_utils.Database,
        request: dict,
        target: str,
        artisan_id: int | None,
        event_id: int,
        notify_customer: bool,
    ) -> None:
        request_id = request["id"]
        has_dispatch = db.execute("select 1 from request_dispatch where request_id = ?", [request_id]).fetchone()
        if not has_dispatch:  # a request staff handle without a dispatch (manual, or never confirmed)
            db.execute(
                "insert into request_dispatch (request_id, state, trade, batch, started_at, updated_at)"
                " values (?, 'manual', ?, 0, ?, ?)",
                [request_id, request["service_type"], self.clock(), self.clock()],
            )
        if target == "assigned":
            previous = request["artisan_id"]
            self._set_dispatch(db, request_id, state="assigned", deadline=None)
            self._close_offers(db, request_id, "taken", except_artisan=artisan_id)
            db.execute(
                "update dispatch_offers set status = 'accepted' where request_id = ? and artisan_id = ?",
                [request_id, artisan_id],
            )
            if previous is not None and previous != artisan_id:
                self._tell_artisan(db, previous, request, "reassigned", f"dispatch:event:{event_id}:previous")
            self._tell_artisan(db, artisan_id, request, "assigned_by_staff", f"dispatch:event:{event_id}:artisan")  # type: ignore[arg-type]
            self._tell_customer_assigned(db, request, artisan_id, key=f"dispatch:event:{event_id}:customer")  # type: ignore[arg-type]
        elif target == "done":
            self._set_dispatch(db, request_id, state="closed", deadline=None)
            self._close_offers(db, request_id, "withdrawn", notify=False)
        elif target == "cancelled":
            self._set_dispatch(db, request_id, state="cancelled", deadline=None)
            self._close_offers(db, request_id, "withdrawn")
            if request["artisan_id"] is not None and request["status"] in ("assigned", "in_progress"):
                self._tell_artisan(
                    db, request["artisan_id"], request, "withdrawn", f"dispatch:event:{event_id}:artisan"
                )
            if notify_customer:
                self._tell_customer(db, request, "cancelled_by_staff", key=f"dispatch:event:{event_id}:customer")

    def _close_offers(
        self,
        db: sqlite_utils.Database,
        request_id: int,
        status: str,
        except_offer: int | None = None,
        except_artisan: int | None = None,
        notify: bool = True,
    ) -> None:
        """Open offers of the request become ``status`` (taken, withdrawn); their artisans are told."""
        request = _request_row(db, request_id)
        rows = db.execute(
            "select o.id, o.artisan_id, a.whatsapp from dispatch_offers o join artisans a on a.id = o.artisan_id"
            " where o.request_id = ? and o.status = 'offered' and o.id != ? and o.artisan_id != ?",
            [request_id, except_offer or -1, except_artisan or -1],
        ).fetchall()
        for offer_id, artisan_id, number in rows:
            db.execute("update dispatch_offers set status = ? where id = ?", [status, offer_id])
            if notify:
                self._tell_artisan(db, artisan_id, request, status, f"dispatch:offer:{offer_id}:{status}", number)

    # --- the customer afterwards --------------------------------------------------------------------------

    def reply_to_customer(
        self, inbound_id: int, message: InboundMessage, fence: Fence = NO_FENCE
    ) -> CustomerReply | None:
        """Answer a customer's "where is my request?" or "cancel it" about a confirmed request, without a model.

        Returns None when the message is neither, or the customer has no such request: the conversation engine
        answers it (a new problem opens a new request there). Otherwise, in one transaction behind ``fence``, the
        request is cancelled (offered and assigned artisans told), the turn joins the conversation and the reply
        is recorded as the message's ``reply`` (key ``<inbound id>:reply``, as the worker records its own), which
        the caller then delivers like any reply. Taken again after a crash, the recorded reply is returned.
        """
        text = message.body or ""
        wants_status, wants_cancel = asks_for_status(text), asks_to_cancel(text)
        if not (wants_status or wants_cancel):
            return None
        key = f"{inbound_id}:reply"
        with self.store.immediate() as db:
            fence(db)
            known = db.execute("select body, request_id from outbound_messages where idempotency_key = ?", [key])
            recorded = known.fetchone()
            if recorded is not None:
                return CustomerReply("status" if wants_status else "cancel", recorded[1], recorded[0])
            request = self._customer_request(db, message.customer_id, active_only=not wants_status)
            if request is None:
                return None
            if not wants_status and _newer_draft(db, message.customer_id, request["id"]):
                return None  # "annulez" while a new request is being described: the engine cancels that one
            conversation = self.history.ensure(message.customer_id, message.channel, message.profile_name, db)
            language = detect_language(text, current=conversation.language or request["language"])
            if wants_status:  # asked first: "pourquoi ma demande est annulée ?" is a question, not an order
                intent, reply = "status", self._status_text(db, request, language)
            else:
                self._change_status(db, request["id"], "cancelled", "customer", text[:200], None, False)
                intent, reply = "cancel", customer_text("cancelled_by_customer", language, id=request["id"])
            self.history.append(db, conversation.id, "user", text, inbound_id=inbound_id)
            self.history.append(db, conversation.id, "assistant", reply, inbound_id=inbound_id)
            self.history.touch(db, conversation.id, language)
            self.outbox.add(
                db, key=key, inbound_id=inbound_id, customer_id=message.customer_id,
                to_number=message.from_number or message.customer_id, kind="reply", bodies=[reply],
            )  # fmt: skip
            db.execute("update outbound_messages set request_id = ? where idempotency_key = ?", [request["id"], key])
        if intent == "cancel":
            self.deliver_pending()  # the artisans' notices; the reply itself is the caller's to deliver
        return CustomerReply(intent, request["id"], reply)

    def customer_status(self, customer_id: str, language: str | None = None) -> str | None:
        """The status of the customer's latest confirmed request in their language, or None without one."""
        db = self.store.db
        request = self._customer_request(db, customer_id, active_only=False)
        if request is None:
            return None
        return self._status_text(db, request, language or request["language"])

    def _customer_request(self, db: sqlite_utils.Database, customer_id: str, active_only: bool) -> dict | None:
        """The customer's latest active request; without one (unless ``active_only``) their latest confirmed one,
        whatever became of it. Drafts never: the conversation is still about them."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        row = db.execute(
            f"select id from service_requests where customer_id = ? and status in ({marks}) order by id desc limit 1",
            [customer_id, *ACTIVE_STATUSES],
        ).fetchone()
        if row is None and not active_only:
            row = db.execute(
                "select id from service_requests where customer_id = ? and status in ('done', 'cancelled')"
                " and confirmed_at is not null order by id desc limit 1",
                [customer_id],
            ).fetchone()
        return _request_row(db, row[0]) if row is not None else None

    def _status_text(self, db: sqlite_utils.Database, request: dict, language: str | None) -> str:
        dispatch = db.execute("select state, quartier from request_dispatch where request_id = ?", [request["id"]])
        state, quartier = dispatch.fetchone() or (None, None)
        values = {
            "id": request["id"],
            "trade": trade_label(request["service_type"], language),
            "place": _place(request, quartier or self.quartiers.find(request["location"])),
        }
        status = request["status"]
        if status in ("assigned", "in_progress") and request["artisan_id"] is not None:
            artisan = self.directory.get(request["artisan_id"])
            return customer_text(f"status_{status}", language, name=artisan.name, number=artisan.whatsapp, **values)
        if status == "confirmed":
            return customer_text("status_exhausted" if state in ("exhausted", "manual") else "status_offering",
                                 language, **values)  # fmt: skip
        return customer_text(f"status_{status}", language, **values)

    # --- messages -----------------------------------------------------------------------------------------

    def _tell_customer(self, db: sqlite_utils.Database, request: dict, text: str, key: str) -> None:
        if not _is_phone(request["customer_id"]):
            return
        body = customer_text(text, request["language"], id=request["id"])
        self._record(db, key, request["customer_id"], "dispatch_customer", body, request["id"])
        self._event(db, request["id"], "customer_notified", note=text)

    def _tell_customer_assigned(self, db: sqlite_utils.Database, request: dict, artisan_id: int, key: str) -> None:
        if not _is_phone(request["customer_id"]):
            return
        artisan = db.execute("select name, whatsapp from artisans where id = ?", [artisan_id]).fetchone()
        body = customer_text(
            "assigned", request["language"], name=artisan[0], number=artisan[1], id=request["id"],
            trade=trade_label(request["service_type"], request["language"]),
        )  # fmt: skip
        self._record(db, key, request["customer_id"], "dispatch_customer", body, request["id"])
        self._event(db, request["id"], "customer_notified", artisan_id=artisan_id, note="assigned")

    def _tell_artisan(
        self, db: sqlite_utils.Database, artisan_id: int, request: dict, text: str, key: str, number: str | None = None
    ) -> None:
        """A notice to an artisan, only inside their 24-hour window (outside it free text is refused, and these
        notices have no template): otherwise the event says it was not sent."""
        if number is None:
            number = db.execute("select whatsapp from artisans where id = ?", [artisan_id]).fetchone()[0]
        if text in ("won", "assigned_by_staff"):
            body = ARTISAN_TEXTS[text].format(**self._job_words(request))
        else:
            body = ARTISAN_TEXTS[text].format(**self._words(request, None))
        if self._window_open(db, number, self.clock()) or text == "assigned_by_staff":
            self._record(db, key, number, "dispatch_artisan", body, request["id"])
        else:
            self._event(db, request["id"], "artisan_not_told", artisan_id=artisan_id,
                        note=f"{text}: 24-hour window closed")  # fmt: skip

    def _record(
        self,
        db: sqlite_utils.Database,
        key: str,
        to: str,
        kind: str,
        body: str,
        request_id: int | None,
        template: ContentTemplate | None = None,
        inbound_id: int | None = None,
    ) -> None:
        """One outbound message, in the caller's transaction, once per key."""
        self.outbox.add(db, key=key, inbound_id=inbound_id, customer_id=to, to_number=to, kind=kind,
                        bodies=[body[:WHATSAPP_MAX_CHARS]])  # fmt: skip
        db.execute(
            "update outbound_messages set request_id = ?, content_sid = ?, content_variables = ?"
            " where idempotency_key = ?",
            [request_id, template.content_sid if template else None,
             template.variables_json() if template else None, key],
        )  # fmt: skip

    def deliver_pending(self, limit: int = 200) -> int:
        """Send recorded dispatch messages not yet with Twilio, each recipient's in order; returns rows settled.

        Any process may run it at once: a row is handed to Twilio by whoever moves it to in_flight first.
        """
        kinds = ("dispatch_offer", "dispatch_reply", "dispatch_customer", "dispatch_artisan", "dispatch_staff")
        ids = self.store.db.execute(
            f"select id from outbound_messages where status in ({', '.join('?' for _ in UNSETTLED)})"
            f" and kind in ({', '.join('?' for _ in kinds)}) order by id limit ?",
            [*UNSETTLED, *kinds, limit],
        ).fetchall()
        by_recipient: dict[str, list[OutboundMessage]] = {}
        for (outbound_id,) in ids:
            row = self.outbox.get(outbound_id)
            if row is not None:
                by_recipient.setdefault(row.to_number, []).append(row)
        settled = 0
        for rows in by_recipient.values():
            try:
                self._deliver_rows(rows, NO_FENCE)
            except Exception:  # noqa: BLE001 - one recipient's trouble must not hold back the others
                log.exception("delivering dispatch messages to %s failed; the next tick retries", rows[0].to_number)
            settled += sum(1 for row in rows if (self.outbox.get(row.id) or row).settled)
        return settled

    def _deliver_rows(self, rows: list[OutboundMessage], fence: Fence) -> Delivery:
        """Deliver one recipient's rows in order through the one WhatsApp sender (free text or template)."""
        return self.sender.deliver(rows, fence)

    # --- small pieces -------------------------------------------------------------------------------------

    def _window_open(self, db: sqlite_utils.Database, number: str, now: float) -> bool:
        last = db.execute(
            "select max(received_at) from inbound_messages where customer_id = ? and channel = 'whatsapp'", [number]
        ).fetchone()[0]
        return last is not None and now <= last + self.settings.window_s

    def _insert_offer(
        self, db: sqlite_utils.Database, request_id: int, artisan_id: int, batch: int, status: str, template: bool
    ) -> int:
        cursor = db.execute(
            "insert into dispatch_offers (request_id, artisan_id, batch, status, template, offered_at)"
            " values (?, ?, ?, ?, ?, ?)",
            [request_id, artisan_id, batch, status, int(template), self.clock()],
        )
        offer_id = int(cursor.lastrowid)
        if status == OPEN_OFFER:
            db.execute(
                "update dispatch_offers set outbound_key = ? where id = ?", [f"dispatch:offer:{offer_id}", offer_id]
            )
        return offer_id

    def _set_dispatch(self, db: sqlite_utils.Database, request_id: int, state: str, **values: Any) -> None:
        values = {"state": state, "updated_at": self.clock(), **values}
        assignments = ", ".join(f"{name} = ?" for name in values)
        db.execute(f"update request_dispatch set {assignments} where request_id = ?", [*values.values(), request_id])

    def _event(self, db: sqlite_utils.Database, request_id: int, kind: str, *, actor: str = "dispatch",
               **values: Any) -> int:  # fmt: skip
        cursor = db.execute(
            "insert into dispatch_events (at, request_id, kind, actor, from_status, to_status, artisan_id, offer_id,"
            " batch, note, inbound_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.clock(), request_id, kind, actor, *(values.get(name) for name in
             ("from_status", "to_status", "artisan_id", "offer_id", "batch", "note", "inbound_id"))],
        )  # fmt: skip
        return int(cursor.lastrowid)

    def _words(self, request: dict, quartier: str | None) -> dict[str, Any]:
        """Values of staff and artisan texts (French); the customer's number only where the text shows it."""
        return {
            "id": request["id"],
            "trade": trade_label(request["service_type"]),
            "place": _place(request, quartier or self.quartiers.find(request["location"])),
            "problem": masked(request["description"]),
            "urgency": masked(request["urgency"], 80),
            "customer": request["customer_id"],
        }

    def _job_words(self, request: dict) -> dict[str, Any]:
        """What the artisan who has the job is told: everything, with the exact location and the number."""
        words = self._words(request, None)
        location = " ".join((request["location"] or "").split())[:200]
        words["location"] = f" (lieu : {location})" if location and location != words["place"] else ""
        words["problem"] = " ".join((request["description"] or "-").split())[:400]
        return words


def _check_transition(request_id: int, current: str, target: str, assigned: int | None, artisan_id: int | None) -> None:
    if target in TRANSITIONS.get(current, frozenset()):
        if target == "assigned" and current == "assigned" and assigned == artisan_id:
            raise IllegalTransition(request_id, current, target, f"it is already assigned to artisan {artisan_id}")
        return
    if current == target:
        reason = f"it is already {target}"
    elif current in ("done", "cancelled"):
        reason = f"a {current} request is closed; the customer can open a new one"
    elif current in ("collecting", "awaiting_confirmation"):
        reason = "the customer has not confirmed it yet; it can only be cancelled"
    elif current == "confirmed":
        reason = "nobody is assigned yet: assign an artisan first"
    elif target == "assigned":
        reason = "work has started: it can only be finished or cancelled"
    else:
        reason = f"{current} cannot become {target}"
    raise IllegalTransition(request_id, current, target, reason)


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    cursor = db.execute(sql, params)
    row = cursor.fetchone()
    return None if row is None else dict(zip([c[0] for c in cursor.description], row, strict=True))


def _request_row(db: sqlite_utils.Database, request_id: int) -> dict[str, Any]:
    row = _one(db, "select * from service_requests where id = ?", [request_id])
    if row is None:
        raise NotFound(f"no request {request_id}")
    return row


def _dispatch_row(db: sqlite_utils.Database, request_id: int) -> dict[str, Any]:
    return _one(db, "select * from request_dispatch where request_id = ?", [request_id]) or {}


def _offer_row(db: sqlite_utils.Database, offer_id: int) -> dict[str, Any]:
    return _one(db, "select * from dispatch_offers where id = ?", [offer_id]) or {}


def _newer_draft(db: sqlite_utils.Database, customer_id: str, request_id: int) -> bool:
    return (
        db.execute(
            "select 1 from service_requests where customer_id = ? and id > ?"
            " and status in ('collecting', 'awaiting_confirmation')",
            [customer_id, request_id],
        ).fetchone()
        is not None
    )


def _place(request: dict, quartier: str | None) -> str:
    if quartier:
        return quartier
    return masked(request.get("location"), 80) if request.get("location") else "Douala"


def _is_phone(customer_id: str | None) -> bool:
    return bool(customer_id) and str(customer_id).startswith("+")
