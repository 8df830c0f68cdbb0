"""``WhatsAppSender``: delivers recorded outbound rows, in order, at most once each.

A row is sent as free text (``Body``), or, when it carries a ``content_sid``, as that approved template
(``ContentSid`` + ``ContentVariables``, ``bot.messaging.templates``): the one sender of every outbound message.

For each unsettled row: a short burst of tries with backoff inside the call (429 / 20429 and 5xx
usually pass within seconds), then a durable retry time on the row if they do not, so a worker is
never held for long. Without a ``TwilioGateway`` (no credentials) rows are kept as sandbox messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.messaging.outbox import IN_FLIGHT, PENDING, Fence, OutboundMessage, Outbox
from bot.messaging.templates import ContentTemplate, send_content_template
from bot.messaging.twilio_gateway import SendKind, SendOutcome, TwilioGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendPolicy:
    tries_per_call: int = 3  # tries inside one deliver() before the row waits for a later pass
    backoff_base_s: float = 0.5  # 0.5, 1, 2 ... between tries in a call
    backoff_max_s: float = 4.0  # also caps a Retry-After we are asked to wait inside a call
    later_base_s: float = 10.0  # first wait when a call's tries are spent; doubles per spent call
    later_max_s: float = 300.0
    max_attempts: int = 12  # Twilio calls for one row before it is marked failed
    in_flight_grace_s: float = 30.0  # an in_flight row younger than this may still be in another worker's hands


@dataclass(frozen=True)
class Delivery:
    settled: bool  # every row has its final answer (accepted, refused, sandbox)
    retry_at: float | None = None  # when to try the unsettled rows again


class WhatsAppSender:
    def __init__(
        self,
        outbox: Outbox,
        gateway: TwilioGateway | None,
        status_callback_url: str | None = None,
        policy: SendPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.outbox = outbox
        self.gateway = gateway
        self.status_callback_url = status_callback_url
        self.policy = policy or SendPolicy()
        self.clock = clock
        self.sleep = sleep

    @property
    def sandbox(self) -> bool:
        return self.gateway is None

    def deliver(self, rows: list[OutboundMessage], fence: Fence) -> Delivery:
        """Send the unsettled ``rows`` in order; stop at the first that must wait, so parts never swap."""
        for row in rows:
            if row.settled:
                continue
            if self.gateway is None:
                self.outbox.mark_sandbox(row.id, fence)
                continue
            if row.status == IN_FLIGHT:
                waiting = self._resolve_in_flight(row)
                if waiting is not None:
                    return Delivery(False, waiting)
                row = self.outbox.get(row.id) or row
                if row.settled:
                    continue
            if row.status == PENDING and row.next_attempt_at > self.clock():
                return Delivery(False, row.next_attempt_at)
            waiting = self._send(row, fence)
            if waiting is not None:
                return Delivery(False, waiting)
        return Delivery(True)

    def _send(self, row: OutboundMessage, fence: Fence) -> float | None:
        """Try ``row`` a few times; None once it is settled, else when to try again."""
        assert self.gateway is not None
        policy = self.policy
        for try_index in range(policy.tries_per_call):
            attempt = self.outbox.mark_in_flight(row.id, fence)
            if attempt is None:
                return self.clock() + policy.in_flight_grace_s  # another worker is on it
            outcome = self._post(row)
            if outcome.kind is SendKind.ACCEPTED:
                if not self.outbox.mark_accepted(row.id, attempt, outcome.sid or "", outcome.status or "queued"):
                    log.warning("outbound %s moved on while Twilio took it (sid %s)", row.id, outcome.sid)
                    if self._still_in_flight(row.id, attempt):  # its sid went to another row: look it up later
                        return self.clock() + policy.in_flight_grace_s
                return None
            if outcome.kind is SendKind.UNKNOWN:
                # Left in_flight: once the call's time is surely over, Twilio is asked whether it has it.
                log.warning("no answer from Twilio for outbound %s: %s", row.id, outcome.reason)
                return self.clock() + policy.in_flight_grace_s
            if outcome.kind is SendKind.REJECTED:
                log.warning("twilio refused outbound %s: %s", row.id, outcome.reason)
                self.outbox.mark_failed(row.id, attempt, outcome.error_code, outcome.reason or "refused")
                return None
            if attempt >= policy.max_attempts:
                reason = f"gave up after {attempt} tries: {outcome.reason}"
                self.outbox.mark_failed(row.id, attempt, outcome.error_code, reason)
                return None
            last_try = try_index == policy.tries_per_call - 1
            wait = self._later_wait(attempt) if last_try else self._backoff(try_index, outcome.retry_after_s)
            until = self.clock() + wait if last_try else 0.0
            if not self.outbox.mark_pending(row.id, attempt, until, outcome.reason, outcome.error_code):
                return self.clock() + policy.in_flight_grace_s  # moved on without us: look again later
            if last_try:
                return self.clock() + wait
            self.sleep(wait)
        return None  # unreachable: the last try returns

    def _post(self, row: OutboundMessage) -> SendOutcome:
        assert self.gateway is not None
        if row.content_sid:
            template = ContentTemplate.from_row(row.content_sid, row.content_variables)
            return send_content_template(self.gateway, row.to_number, template, self._callback_url(row))
        return self.gateway.send(row.to_number, row.body, self._callback_url(row))

    def settle_dropped(self, rows: list[OutboundMessage], reason: str) -> Delivery:
        """Settle rows that must not be sent any more (a holding reply the answer made pointless).

        Pending ones were dropped by ``Outbox.supersede``; one left ``in_flight`` may be at Twilio, so Twilio is
        asked: recorded as accepted if it has it, else dropped with ``reason``. Nothing is sent.
        """
        waiting: float | None = None
        for row in rows:
            if row.status != IN_FLIGHT or self.gateway is None:
                continue
            at = self._resolve_in_flight(row, drop_reason=reason)
            if at is not None:
                waiting = at if waiting is None else min(waiting, at)
        return Delivery(waiting is None, waiting)

    def _resolve_in_flight(self, row: OutboundMessage, drop_reason: str | None = None) -> float | None:
        """A row left in_flight (its sender crashed or is still at it): ask Twilio whether it has it.

        Only a message Twilio created at or after this attempt began, and that no other row holds, confirms
        it: an earlier identical reply ("Merci ...") is never taken for this one, so a send Twilio never got
        is sent again and one it took is not. Returns None when resolved (accepted, or back to pending to be
        sent; dropped with ``drop_reason`` when given), else when to look again.
        """
        assert self.gateway is not None
        started = row.send_started_at or 0.0
        ready_at = started + self.policy.in_flight_grace_s
        if ready_at > self.clock():
            return ready_at
        try:
            sids = self.gateway.find_sent(row.to_number, row.body, started)
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot tell": wait rather than risk a duplicate
            log.warning("cannot ask Twilio about in-flight outbound %s: %s", row.id, type(exc).__name__)
            if drop_reason:  # never sent again either way: waiting would only hold back the message it replaces
                unknown = f"{drop_reason}; Twilio could not be asked whether it had it ({type(exc).__name__})"
                self.outbox.mark_failed(row.id, row.attempts, None, unknown)
                return None
            return self.clock() + self._later_wait(row.attempts)
        if self.outbox.confirm_sent(row.id, row.attempts, sids) is not None:
            return None
        if drop_reason:
            self.outbox.mark_failed(row.id, row.attempts, None, drop_reason)
        else:
            self.outbox.mark_pending(row.id, row.attempts, 0.0, "not found at Twilio after an interrupted send")
        return None

    def _still_in_flight(self, outbound_id: int, attempt: int) -> bool:
        current = self.outbox.get(outbound_id)
        return current is not None and current.status == IN_FLIGHT and current.attempts == attempt

    def _backoff(self, try_index: int, retry_after: float | None) -> float:
        wait = self.policy.backoff_base_s * 2**try_index
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.policy.backoff_max_s)

    def _later_wait(self, attempts: int) -> float:
        spent_calls = max(0, attempts // self.policy.tries_per_call - 1)
        return min(self.policy.later_base_s * 2**spent_calls, self.policy.later_max_s)

    def _callback_url(self, row: OutboundMessage) -> str | None:
        if not self.status_callback_url:
            return None
        separator = "&" if "?" in self.status_callback_url else "?"
        return f"{self.status_callback_url}{separator}outbound={row.id}"
