"""Approved WhatsApp templates (Twilio Content API): how an outbound row carrying a ``content_sid`` is sent.

Outside someone's 24-hour window WhatsApp refuses free text (63016); only a template approved by Meta goes
through, sent with Twilio's ``ContentSid`` and ``ContentVariables`` instead of ``Body``. Such a row keeps in
``body`` the text the template renders to: what staff read, and what ``TwilioGateway.find_sent`` looks for
when a send's answer was lost.

``send_content_template`` is the gateway call; ``TemplateSender`` moves a template row through the same
outbox states as ``WhatsAppSender`` (pending -> in_flight -> Twilio's status; a lost answer looked up at Twilio
before any resend), one try per call, the retry time kept on the row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioRestException

from bot.messaging.outbox import IN_FLIGHT, PENDING, Fence, OutboundMessage, Outbox
from bot.messaging.sender import Delivery, SendPolicy
from bot.messaging.twilio_gateway import SendKind, SendOutcome, TwilioGateway, _never_sent, whatsapp_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContentTemplate:
    """A template message: Twilio's Content SID and the values of its ``{{n}}`` variables."""

    content_sid: str
    variables: Mapping[str, str]

    def variables_json(self) -> str:
        return json.dumps(dict(self.variables), ensure_ascii=False, sort_keys=True)


def send_content_template(
    gateway: TwilioGateway, to: str, template: ContentTemplate, status_callback: str | None = None
) -> SendOutcome:
    """POST one template message (ContentSid + ContentVariables); never raises for Twilio or network errors.

    Classified exactly like ``TwilioGateway.send`` (same client, same error table).
    """
    try:
        message = gateway._client.messages.create(  # noqa: SLF001 - the gateway's own client and classification
            to=whatsapp_address(to),
            from_=gateway.from_number,
            content_sid=template.content_sid,
            content_variables=template.variables_json(),
            status_callback=status_callback,
        )
    except TwilioRestException as exc:
        return gateway._classify(exc)  # noqa: SLF001
    except (requests.Timeout, requests.ConnectionError) as exc:
        reason = gateway._scrub(f"network: {type(exc).__name__}: {exc}")  # noqa: SLF001
        return SendOutcome(SendKind.RETRY if _never_sent(exc) else SendKind.UNKNOWN, reason=reason)
    return SendOutcome(SendKind.ACCEPTED, sid=message.sid, status=message.status or "queued")


def template_of(outbox: Outbox, outbound_id: int) -> ContentTemplate | None:
    """The template an outbound row is to be sent as, or None for a free-text row."""
    row = outbox.store.db.execute(
        "select content_sid, content_variables from outbound_messages where id = ?", [outbound_id]
    ).fetchone()
    if row is None or not row[0]:
        return None
    return ContentTemplate(row[0], json.loads(row[1] or "{}"))


class TemplateSender:
    """Delivers outbound rows that carry a template; free-text rows stay with ``WhatsAppSender``."""

    def __init__(
        self,
        outbox: Outbox,
        gateway: TwilioGateway | None,
        status_callback_url: str | None = None,
        policy: SendPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.gateway = gateway
        self.status_callback_url = status_callback_url
        self.policy = policy or SendPolicy()
        self.clock = clock

    def deliver(self, row: OutboundMessage, template: ContentTemplate, fence: Fence) -> Delivery:
        if row.settled:
            return Delivery(True)
        if self.gateway is None:
            self.outbox.mark_sandbox(row.id, fence)
            return Delivery(True)
        if row.status == IN_FLIGHT:
            waiting = self._resolve_in_flight(row)
            if waiting is not None:
                return Delivery(False, waiting)
            row = self.outbox.get(row.id) or row
            if row.settled:
                return Delivery(True)
        if row.status == PENDING and row.next_attempt_at > self.clock():
            return Delivery(False, row.next_attempt_at)
        return self._send(row, template, fence)

    def _send(self, row: OutboundMessage, template: ContentTemplate, fence: Fence) -> Delivery:
        assert self.gateway is not None
        attempt = self.outbox.mark_in_flight(row.id, fence)
        if attempt is None:
            return Delivery(False, self.clock() + self.policy.in_flight_grace_s)  # another process is on it
        outcome = send_content_template(self.gateway, row.to_number, template, self._callback_url(row))
        if outcome.kind is SendKind.ACCEPTED:
            if not self.outbox.mark_accepted(row.id, attempt, outcome.sid or "", outcome.status or "queued"):
                log.warning("template outbound %s moved on while Twilio took it (sid %s)", row.id, outcome.sid)
            return Delivery(True)
        if outcome.kind is SendKind.UNKNOWN:
            log.warning("no answer from Twilio for template outbound %s: %s", row.id, outcome.reason)
            return Delivery(False, self.clock() + self.policy.in_flight_grace_s)
        if outcome.kind is SendKind.REJECTED or attempt >= self.policy.max_attempts:
            reason = outcome.reason or "refused"
            if outcome.kind is not SendKind.REJECTED:
                reason = f"gave up after {attempt} tries: {reason}"
            self.outbox.mark_failed(row.id, attempt, outcome.error_code, reason)
            return Delivery(True)
        wait = outcome.retry_after_s if outcome.retry_after_s is not None else self.policy.later_base_s
        until = self.clock() + min(max(wait, self.policy.backoff_base_s), self.policy.later_max_s)
        self.outbox.mark_pending(row.id, attempt, until, outcome.reason, outcome.error_code)
        return Delivery(False, until)

    def _resolve_in_flight(self, row: OutboundMessage) -> float | None:
        """As ``WhatsAppSender``: once the interrupted call's time is surely over, ask Twilio whether it has it."""
        assert self.gateway is not None
        started = row.send_started_at or 0.0
        ready_at = started + self.policy.in_flight_grace_s
        if ready_at > self.clock():
            return ready_at
        try:
            sids = self.gateway.find_sent(row.to_number, row.body, started)
        except Exception as exc:  # noqa: BLE001 - cannot tell: wait rather than risk a duplicate
            log.warning("cannot ask Twilio about in-flight template outbound %s: %s", row.id, type(exc).__name__)
            return self.clock() + self.policy.later_base_s
        if self.outbox.confirm_sent(row.id, row.attempts, sids) is None:
            self.outbox.mark_pending(row.id, row.attempts, 0.0, "not found at Twilio after an interrupted send")
        return None

    def _callback_url(self, row: OutboundMessage) -> str | None:
        if not self.status_callback_url:
            return None
        separator = "&" if "?" in self.status_callback_url else "?"
        return f"{self.status_callback_url}{separator}outbound={row.id}"
