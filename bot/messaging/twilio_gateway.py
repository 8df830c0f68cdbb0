"""``TwilioGateway``: one WhatsApp message handed to Twilio's Messages API, and what Twilio said about it.

Every answer is sorted into one ``SendOutcome`` kind, with one policy each::

    SendOutcome
    ├── ACCEPTED   201: Twilio queued the message; its sid is recorded and status callbacks follow
    ├── RETRY      Twilio or the path to it is (maybe briefly) unwell: try again with backoff
    │   ├── 429 / code 20429   too many requests (Retry-After honoured when sent)
    │   ├── 5xx                Twilio server error
    │   └── no connection      refused, or connect timeout: the request never left
    ├── UNKNOWN    the request left but no answer came (read timeout, connection dropped): Twilio may have the
    │              message; asking Twilio later decides, since sending again could deliver it twice
    └── REJECTED   this message will never be accepted as it is: recorded with the reason, not retried
        ├── 63016  outside WhatsApp's 24-hour window (a template would be needed)
        ├── 21211  the 'To' number is not a valid phone number
        ├── 21610  the customer replied STOP
        ├── 20003  authentication failed (bad TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)
        └── any other 4xx

The twilio client sends to ``https://api.twilio.com``; ``RebasedHttpClient`` rewrites that prefix to
``TWILIO_API_BASE`` so the same code can talk to an emulated Twilio, and sets the request timeout the
client otherwise leaves unset (a stalled connection would hold a worker forever).
"""

from __future__ import annotations

import enum
import math
import threading
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.redaction import redact_secrets

TWILIO_API_BASE = "https://api.twilio.com"
REASON_MAX_CHARS = 300

# What each Twilio error code means for the people reading the outbound record.
ERROR_REASONS: dict[int, str] = {
    20003: "Twilio refused our credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
    20429: "Twilio rate limit (too many requests)",
    21211: "the 'To' number is not a valid phone number",
    21408: "Twilio account not permitted to send to this region",
    21610: "the customer unsubscribed (replied STOP)",
    63003: "the recipient number is not reachable on WhatsApp",
    63007: "TWILIO_WHATSAPP_NUMBER is not a WhatsApp sender of this account",
    63016: "outside WhatsApp's 24-hour window: free-form replies are refused, a template is required",
    63018: "WhatsApp rate limit for this sender",
    63024: "invalid message recipient",
    63032: "the customer cannot receive this message (WhatsApp user restriction)",
}


class SendKind(enum.StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    UNKNOWN = "unknown"
    REJECTED = "rejected"


@dataclass(frozen=True)
class SendOutcome:
    kind: SendKind
    sid: str | None = None
    status: str | None = None  # Twilio's status of an accepted message (queued, accepted, ...)
    error_code: int | None = None
    http_status: int | None = None
    reason: str | None = None
    retry_after_s: float | None = None


DEFAULT_POOL_SIZE = 10  # connections kept to Twilio: at least requests' default


class RebasedHttpClient(TwilioHttpClient):
    """The twilio HTTP client, pointed at ``api_base`` instead of api.twilio.com, with a timeout, and a connection
    pool as large as the threads that send through it: twilio's own keeps 6 (10 for http), so with dozens of worker
    threads most sends threw their connection away and opened (and TLS-handshook) a new one."""

    def __init__(self, api_base: str, timeout_s: float, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        super().__init__(timeout=timeout_s)
        adapter = HTTPAdapter(pool_maxsize=max(pool_size, DEFAULT_POOL_SIZE))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.api_base = api_base.rstrip("/")
        self._per_thread = threading.local()  # worker threads share one client: each reads its own answer

    @property
    def last_retry_after(self) -> str | None:
        return getattr(self._per_thread, "retry_after", None)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API_BASE):
            url = self.api_base + url[len(TWILIO_API_BASE) :]
        response = super().request(method, url, *args, **kwargs)
        # The twilio exception drops headers; keep Retry-After so a 429 can be honoured.
        headers = response.headers or {}
        self._per_thread.retry_after = headers.get("Retry-After") or headers.get("retry-after")
        return response


class TwilioGateway:
    """Sends one message and classifies Twilio's answer; knows nothing of conversations or retries."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str = TWILIO_API_BASE,
        timeout_s: float = 10,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.from_number = whatsapp_address(from_number)
        self._auth_token = auth_token
        self._http = RebasedHttpClient(api_base, timeout_s, pool_size)
        self._client = Client(account_sid, auth_token, http_client=self._http)

    def send(self, to: str, body: str, status_callback: str | None = None) -> SendOutcome:
        """POST one message; never raises for Twilio or network errors (they become an outcome)."""
        try:
            message = self._client.messages.create(
                to=whatsapp_address(to),
                from_=self.from_number,
                body=body,
                status_callback=status_callback,
            )
        except TwilioRestException as exc:
            return self._classify(exc)
        except (requests.Timeout, requests.ConnectionError) as exc:
            reason = self._scrub(f"network: {type(exc).__name__}: {exc}")
            return SendOutcome(SendKind.RETRY if _never_sent(exc) else SendKind.UNKNOWN, reason=reason)
        return SendOutcome(SendKind.ACCEPTED, sid=message.sid, status=message.status or "queued")

    def find_sent(self, to: str, body: str, since: float) -> list[str]:
        """The sids of messages with this body that Twilio took from us for ``to`` since ``since``, oldest first.

        Used when a send's answer was lost: one of them may be that send. Twilio dates a message to the
        second, so one created in the second ``since`` falls in counts (Twilio may have taken it a fraction
        after the send began) and one from an earlier second cannot be it. An earlier identical reply sent
        in that same second is also listed: the caller must skip sids another outbound row already holds.
        """
        # Not filtered on DateSent, which a message still queued at Twilio does not have yet.
        # Twilio or network errors propagate: the caller must not resend while it cannot tell.
        messages = self._client.messages.list(to=whatsapp_address(to), from_=self.from_number, limit=50)
        first_second = math.floor(since)
        found = [
            m
            for m in reversed(messages)  # Twilio lists newest first; within a second, keep oldest first
            # Undated: nothing shows it was created after the send began, so it cannot confirm it.
            if m.body == body and m.date_created is not None and m.date_created.timestamp() >= first_second
        ]
        # Oldest first: the message nearest the send's start is the likeliest its own, and leaving the newer
        # ones free keeps them for rows whose sends began later (they could not take the older ones).
        found.sort(key=lambda m: m.date_created)
        return [m.sid for m in found]

    def _classify(self, exc: TwilioRestException) -> SendOutcome:
        code = int(exc.code) if exc.code else None
        reason = self._scrub(f"{ERROR_REASONS.get(code or 0) or 'Twilio error'}: {exc.msg}")
        if exc.status == 429 or code == 20429 or exc.status >= 500:
            retry_after = _seconds(self._http.last_retry_after)
            return SendOutcome(
                SendKind.RETRY, error_code=code, http_status=exc.status, reason=reason, retry_after_s=retry_after
            )
        return SendOutcome(SendKind.REJECTED, error_code=code, http_status=exc.status, reason=reason)

    def _scrub(self, text: str) -> str:
        return redact_secrets(text, known_secrets=(self._auth_token,))[:REASON_MAX_CHARS]


def whatsapp_address(number: str) -> str:
    """``+2376...`` -> ``whatsapp:+2376...`` (already prefixed numbers are kept)."""
    number = number.strip()
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached Twilio (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = str(exc)
    return isinstance(exc, requests.ConnectionError) and (
        "NewConnectionError" in text or "Connection refused" in text or "Name or service not known" in text
    )


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
