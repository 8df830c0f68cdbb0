"""An emulated Twilio Messages API, served by ``ProviderEmulator`` on the same port.

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json          send (form-encoded, Basic auth)
    GET  /2010-04-01/Accounts/{AccountSid}/Messages.json[?To=&From=&PageSize=]   list, newest first
    GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json    fetch one

The twilio client is pointed here with ``TWILIO_API_BASE=<emulator base_url>``. Basic auth must name the
account in the path; with ``set_credentials`` only that token is accepted. Every accepted message is
recorded *before* the (optional) latency, so killing a client mid-call leaves Twilio holding a message
the client never heard about, which is the window a sender must survive. With ``deliver_callbacks``
on, each accepted message's ``StatusCallback`` gets Twilio's signed status posts (sent, delivered; or
failed with 63016 under the ``outside_window`` fault). The ``answer_lost`` and ``request_lost`` faults
hold the answer past the client's timeout, with or without recording the message first. ``set_clock``
lets a test date messages (``date_created``) on the same fake clock as the sender that looks them up.

A template send (``ContentSid`` + ``ContentVariables``, no ``Body``) is accepted as Twilio accepts it; the
message records ``content_sid`` and ``content_variables``, and its ``body`` is the template rendered with the
variables when the test declared the template's text (``set_content_template``), else empty.

Inbound media (what a webhook's ``MediaUrlN`` points at) are held with ``add_media``, which returns Twilio's URL::

    GET /2010-04-01/Accounts/{AccountSid}/Messages/{MM...}/Media/{ME...}   Basic auth (AccountSid:AuthToken), else
                                                                          401 20003; then 307 to the CDN
    GET /_cdn/media/{token}                                               the bytes, Content-Type, Content-Length;
                                                                          no auth, as a pre-signed CDN URL

Media faults: ``404`` (the Twilio URL answers 404 20404, as for deleted media), ``hang`` (the CDN sends its
headers, then never the body, until reset or stop), ``wrong_type`` (the CDN declares ``served_type``, text/html by
default). Every GET of either URL is recorded (``media_fetches``) with the Basic-auth user it presented.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from twilio.request_validator import RequestValidator

from bot.sandbox.twilio_payloads import (
    BODY_MAX_CHARS,
    JSON_TYPE,
    LOST_ANSWER_AFTER_S,
    OUTSIDE_WINDOW_MESSAGE,
    TWILIO_FAULTS,
    error_body,
    fault_error,
    message_page,
    message_resource,
    new_message_sid,
)

TWILIO_PREFIX = "/2010-04-01/"
CDN_PREFIX = "/_cdn/media/"
MEDIA_FAULTS = ("404", "hang", "wrong_type")
# Longer than any fetch timeout: a hanging CDN body is released only by reset, stop or the client leaving.
MEDIA_HANG_SECONDS = 120.0
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
_MEDIA = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<message>[^/]+)/Media/(?P<sid>[^/.]+)$")
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")
_ADDRESS = re.compile(r"^(whatsapp:)?\+\d{6,15}$")
CALLBACK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TwilioReply:
    """What the HTTP handler writes; ``after`` runs once the answer is sent (status callbacks)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", JSON_TYPE),)
    latency: float = 0.0
    after: Callable[[], None] | None = None


@dataclass
class _Plan:
    fault: str
    remaining: int | None
    retry_after: float | None


@dataclass(frozen=True)
class HeldMedia:
    """One media file the emulated Twilio holds for an inbound message."""

    sid: str
    message_sid: str
    account_sid: str
    content: bytes
    content_type: str
    served_type: str  # the Content-Type the CDN declares (differs from content_type under wrong_type)
    fault: str | None
    token: str  # the CDN path's secret part

    def url(self, base_url: str) -> str:
        return f"{base_url}{TWILIO_PREFIX}Accounts/{self.account_sid}/Messages/{self.message_sid}/Media/{self.sid}"


@dataclass
class EmulatedTwilio:
    """Thread-safe state of the emulated Twilio account(s): messages, faults, latency, callbacks."""

    credentials: dict[str, str] = field(default_factory=dict)  # account sid -> auth token; empty: any
    deliver_callbacks: bool = False
    _messages: list[dict[str, Any]] = field(default_factory=list)
    _callback_urls: dict[str, str] = field(default_factory=dict)
    _accepted_at: dict[str, float] = field(default_factory=dict)  # sid -> time.time() when accepted
    _clock: Callable[[], float] = time.time  # dates messages (date_created), as Twilio's own clock does
    _plan: _Plan | None = None
    _latency: float = 0.0
    _requests: int = 0
    _content_templates: dict[str, str] = field(default_factory=dict)  # ContentSid -> text with {{n}} variables
    _lock: threading.Condition = field(default_factory=threading.Condition)
    base_url: str = ""  # set by ProviderEmulator.start(): media URLs are absolute, as Twilio's are
    _media: dict[str, HeldMedia] = field(default_factory=dict)  # media sid -> media
    _media_fetches: list[dict[str, Any]] = field(default_factory=list)
    # Set (then replaced) by reset() to free CDN requests hanging under the hang fault.
    _media_release: threading.Event = field(default_factory=threading.Event)

    # --- scripting ----------------------------------------------------------------------------------------

    def set_credentials(self, account_sid: str, auth_token: str) -> None:
        with self._lock:
            self.credentials[account_sid] = auth_token

    def set_fault(self, fault: str | None, times: int | None = None, retry_after: float | None = None) -> None:
        """Fail the next ``times`` sends (None: until cleared) with ``fault`` (see ``twilio_payloads``)."""
        if fault is not None and fault not in TWILIO_FAULTS:
            raise ValueError(f"unknown Twilio fault {fault!r}; expected one of {', '.join(TWILIO_FAULTS)}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._plan = _Plan(fault, times, retry_after) if fault else None

    def set_latency(self, seconds: float) -> None:
        """Answer sends ``seconds`` late (the message is accepted and recorded first)."""
        if seconds < 0:
            raise ValueError(f"latency must not be negative, got {seconds}")
        with self._lock:
            self._latency = float(seconds)

    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Date new messages by ``clock`` (a test's fake clock) instead of ``time.time``; None restores it."""
        with self._lock:
            self._clock = clock or time.time

    def set_content_template(self, content_sid: str, text: str) -> None:
        """Declare an approved template's text (``{{1}}``...), so its sends read as the rendered text."""
        with self._lock:
            self._content_templates[content_sid] = text

    def set_callbacks(self, enabled: bool) -> None:
        with self._lock:
            self.deliver_callbacks = enabled

    def reset(self) -> None:
        with self._lock:
            self.credentials.clear()
            self.deliver_callbacks = False
            self._messages.clear()
            self._callback_urls.clear()
            self._accepted_at.clear()
            self._plan = None
            self._latency = 0.0
            self._requests = 0
            self._clock = time.time
            self._content_templates.clear()
            self._media.clear()
            self._media_fetches.clear()
            self._media_release.set()
            self._media_release = threading.Event()

    def add_media(
        self,
        content: bytes,
        content_type: str,
        fault: str | None = None,
        served_type: str | None = None,
        message_sid: str | None = None,
        account_sid: str | None = None,
    ) -> str:
        """Hold ``content`` as an inbound message's media; returns its Twilio URL (the webhook's ``MediaUrlN``).

        ``fault``: None, ``404``, ``hang`` or ``wrong_type`` (the CDN then declares ``served_type``, default
        text/html). ``message_sid`` (MM + 32 hex) groups several media under one message; a new one by default.
        ``account_sid`` defaults to the account given to ``set_credentials`` (else AC000...)."""
        if fault is not None and fault not in MEDIA_FAULTS:
            raise ValueError(f"unknown media fault {fault!r}; expected one of {', '.join(MEDIA_FAULTS)}")
        if not content_type:
            raise ValueError("content_type is required")
        if not self.base_url:
            raise RuntimeError("emulator not started: media URLs name its address")
        with self._lock:
            account = account_sid or next(iter(self.credentials), DEFAULT_ACCOUNT_SID)
            media = HeldMedia(
                sid="ME" + secrets.token_hex(16),
                message_sid=message_sid or "MM" + secrets.token_hex(16),
                account_sid=account,
                content=bytes(content),
                content_type=content_type,
                served_type=(served_type or "text/html; charset=utf-8") if fault == "wrong_type" else content_type,
                fault=fault,
                token=secrets.token_urlsafe(24),
            )
            self._media[media.sid] = media
            return media.url(self.base_url)

    def media_fetches(self) -> list[dict[str, Any]]:
        """Every GET of a media URL, oldest first: ``{"step": "twilio" | "cdn", "media_sid", "auth_user"
        (the Basic-auth user presented, or None), "authorized" (the credentials were right), "status", "at"}``."""
        with self._lock:
            return [dict(f) for f in self._media_fetches]

    def wait_for_media_fetches(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` media GETs (Twilio URL or CDN) arrived; lets tests sync without sleeping."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._media_fetches) >= count, timeout)

    def cdn(self, token: str, authorization: str) -> tuple[HeldMedia | None, threading.Event]:
        """The media behind a CDN token (recording the fetch), and the event that frees a hanging body."""
        with self._lock:
            media = next((m for m in self._media.values() if m.token == token), None)
            self._record_fetch("cdn", media.sid if media else None, authorization, None, 200 if media else 404)
            return media, self._media_release

    def _record_fetch(
        self, step: str, sid: str | None, authorization: str, authorized: bool | None, status: int
    ) -> None:
        self._media_fetches.append(
            {"step": step, "media_sid": sid, "auth_user": _basic_user(authorization), "authorized": authorized,
             "status": status, "at": time.time()}
        )  # fmt: skip
        self._lock.notify_all()

    # --- records ------------------------------------------------------------------------------------------

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Accepted messages, oldest first (copies), optionally only those sent to ``to``."""
        with self._lock:
            return [dict(m) for m in self._messages if to is None or m["to"] == to]

    def accepted_at(self) -> dict[str, float]:
        """When each message was accepted (sid -> epoch seconds, finer than Twilio's date_created)."""
        with self._lock:
            return dict(self._accepted_at)

    def request_count(self) -> int:
        """Send requests received, accepted or not."""
        with self._lock:
            return self._requests

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self._messages) >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._requests >= count, timeout)

    # --- HTTP ---------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes) -> TwilioReply:
        media = _MEDIA.match(path) if method == "GET" else None
        if media is not None:
            return self._media_get(media["account"], media["message"], media["sid"], headers.get("authorization", ""))
        match = _MESSAGES.match(path)
        if match is None:
            return TwilioReply(404, error_body(404, 20404, f"The requested resource {path} was not found"))
        account = match["account"]
        token = self._authenticated(account, headers.get("authorization", ""))
        if token is None:
            return TwilioReply(401, error_body(401, 20003, "Authenticate"))
        if method == "GET" and match["sid"]:
            return self._fetch(account, match["sid"])
        if method == "GET":
            return self._list(account, parse_qs(query))
        if method == "POST" and not match["sid"]:
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
            return self._create(account, token, form)
        return TwilioReply(405, error_body(405, 20004, "Method not allowed"))

    def _authenticated(self, account: str, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        if user != account or not password:
            return None
        with self._lock:
            expected = self.credentials.get(account)
            if self.credentials and expected != password:
                return None
        return password

    def _media_get(self, account: str, message_sid: str, sid: str, authorization: str) -> TwilioReply:
        authorized = self._authenticated(account, authorization) is not None
        with self._lock:
            media = self._media.get(sid)
            if not authorized:
                status, reply = 401, TwilioReply(
                    401, error_body(401, 20003, "Authenticate"),
                    (("Content-Type", JSON_TYPE), ("WWW-Authenticate", 'Basic realm="Twilio API"')),
                )  # fmt: skip
            elif (
                media is None
                or media.fault == "404"
                or (media.account_sid, media.message_sid) != (account, message_sid)
            ):
                resource = f"/2010-04-01/Accounts/{account}/Messages/{message_sid}/Media/{sid}.json"
                status, reply = (
                    404,
                    TwilioReply(404, error_body(404, 20404, f"The requested resource {resource} was not found")),
                )
            else:
                location = f"{self.base_url}{CDN_PREFIX}{media.token}"
                status, reply = (
                    307,
                    TwilioReply(307, b"", (("Content-Type", "text/plain; charset=utf-8"), ("Location", location))),
                )
            self._record_fetch("twilio", sid, authorization, authorized, status)
        return reply

    def _create(self, account: str, token: str, form: dict[str, str]) -> TwilioReply:
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        content_sid = form.get("ContentSid") or None
        variables = form.get("ContentVariables") or None
        with self._lock:
            self._requests += 1
            self._lock.notify_all()
            plan = self._plan
            if plan is not None and plan.remaining is not None:
                plan.remaining -= 1
                if plan.remaining <= 0:
                    self._plan = None
            latency = self._latency
            callbacks = self.deliver_callbacks
            clock = self._clock
        if not to:
            return TwilioReply(400, error_body(400, 21604, "A 'To' phone number is required."))
        if not from_:
            return TwilioReply(400, error_body(400, 21603, "A 'From' phone number is required."))
        if content_sid is not None:
            rendered = self._render(content_sid, variables)
            if rendered is None:
                return TwilioReply(400, error_body(400, 21656, "The ContentVariables Parameter is invalid."))
            body = body or rendered
        elif not body and not form.get("MediaUrl"):
            return TwilioReply(400, error_body(400, 21602, "Message body is required."))
        if len(body) > BODY_MAX_CHARS:
            return TwilioReply(
                400, error_body(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
            )
        if not _ADDRESS.match(to):
            return TwilioReply(400, error_body(400, 21211, f"Invalid 'To' Phone Number: {to}"))
        fault = plan.fault if plan else None
        if fault in ("answer_lost", "request_lost"):
            latency = max(latency, LOST_ANSWER_AFTER_S)
        failure = fault_error(fault, to) if fault else None
        if failure is not None:
            status, code, message = failure
            headers: tuple[tuple[str, str], ...] = (("Content-Type", JSON_TYPE),)
            if status == 429:
                headers += (("Retry-After", str(int(plan.retry_after or 1))),)  # type: ignore[union-attr]
            return TwilioReply(status, error_body(status, code, message), headers, latency)
        resource = message_resource(
            sid=new_message_sid(), account_sid=account, to=to, from_=from_, body=body, status="queued",
            created_at=clock(),
        )  # fmt: skip
        if content_sid is not None:
            resource.update(content_sid=content_sid, content_variables=variables)
        with self._lock:
            self._messages.append(resource)
            self._accepted_at[resource["sid"]] = time.time()
            callback = form.get("StatusCallback")
            if callback:
                self._callback_urls[resource["sid"]] = callback
            self._lock.notify_all()
        after = None
        if callback and callbacks:
            final = ("failed", 63016) if fault == "outside_window" else ("delivered", None)
            after = self._callbacks_later(resource["sid"], account, token, callback, final)
        elif fault == "outside_window":
            self._update(resource["sid"], "failed", 63016)
        return TwilioReply(201, json.dumps(resource).encode(), latency=latency, after=after)

    def _render(self, content_sid: str, variables: str | None) -> str | None:
        """The template's text with its variables; "" for an undeclared template; None for bad variables."""
        try:
            values = json.loads(variables) if variables else {}
        except ValueError:
            return None
        if not isinstance(values, dict):
            return None
        with self._lock:
            text = self._content_templates.get(content_sid, "")
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(values.get(m[1], m[0])), text)

    def _fetch(self, account: str, sid: str) -> TwilioReply:
        with self._lock:
            found = next((m for m in self._messages if m["sid"] == sid and m["account_sid"] == account), None)
        if found is None:
            return TwilioReply(
                404, error_body(404, 20404, f"The requested resource /Messages/{sid}.json was not found")
            )
        return TwilioReply(200, json.dumps(found).encode())

    def _list(self, account: str, query: dict[str, list[str]]) -> TwilioReply:
        to = (query.get("To") or [None])[0]
        from_ = (query.get("From") or [None])[0]
        size = int((query.get("PageSize") or ["50"])[0])
        with self._lock:
            selected = [
                dict(m)
                for m in reversed(self._messages)
                if m["account_sid"] == account
                and (to is None or m["to"] == to)
                and (from_ is None or m["from"] == from_)
            ]
        return TwilioReply(200, json.dumps(message_page(account, selected, size)).encode())

    def _update(self, sid: str, status: str, error_code: int | None) -> None:
        with self._lock:
            for message in self._messages:
                if message["sid"] == sid:
                    message["status"] = status
                    message["error_code"] = error_code
                    message["error_message"] = OUTSIDE_WINDOW_MESSAGE if error_code == 63016 else None

    def _callbacks_later(
        self, sid: str, account: str, token: str, url: str, final: tuple[str, int | None]
    ) -> Callable[[], None]:
        def deliver() -> None:
            for status, code in (("sent", None), final) if final[0] != "failed" else (final,):
                self._update(sid, status, code)
                form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": account, "ApiVersion": "2010-04-01"}
                if code:
                    form["ErrorCode"] = str(code)
                signature = RequestValidator(token).compute_signature(url, form)
                try:
                    httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=CALLBACK_TIMEOUT_S)
                except httpx.HTTPError:
                    return  # Twilio gives up on a callback that fails; so do we

        return lambda: threading.Thread(target=deliver, name="twilio-status-callback", daemon=True).start()


def _basic_user(authorization: str) -> str | None:
    """The user of a Basic Authorization header (the account SID, for Twilio); never the password."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded).decode().partition(":")[0]
    except ValueError:
        return None
