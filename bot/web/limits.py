"""``ModelGate``: whether a request on an unauthenticated route may call a model now, decided before it does.

``POST /webhook/chat`` and ``POST /api/ai-suggestions/generate`` make a provider call, paid for and answered
synchronously, for anyone who asks. Each request passes the gate first, cheapest check first::

    503 busy               every model slot of this process is taken (CHAT_MODEL_SLOTS): a per-process
                           semaphore smaller than gunicorn's --threads, taken without waiting, so threads are
                           always left for Twilio's webhook, which must ack within 15 s while chat waits on models
    429 session_rate       this conversation made CHAT_SESSION_REQUESTS_PER_MINUTE requests on this route this minute
    429 ip_rate            this client address made CHAT_IP_REQUESTS_PER_MINUTE requests on this route this minute
    429 daily_budget       llm_calls.cost_usd of the last 24 h reached LLM_DAILY_BUDGET_USD; every purpose counts
                           (WhatsApp too) but only these routes are refused: WhatsApp customers never are
    503 store_unavailable  the store cannot take a write (disk full, file read-only or immutable): refused before
                           a provider is paid for an answer that could not be kept; any SQLite error later in these
                           routes is answered the same way, never 500

Every refusal has a ``Retry-After`` header and a JSON body ``{"error", "detail", "reason"}``.

Settings (environment, checked at start-up; a bad value raises ``LimitSettingsError`` naming the variable):

CHAT_MODEL_SLOTS                  model calls at once per web process for these routes (default 2, of the
                                  Procfile's 4 threads)
CHAT_SESSION_REQUESTS_PER_MINUTE  per chat session and route (default 10: a fast typist)
CHAT_IP_REQUESTS_PER_MINUTE       per client address and route (default 30: a few visitors behind one NAT)
LLM_DAILY_BUDGET_USD              spend of the last 24 h at which these routes refuse (default 10; 0 closes them)
TRUSTED_PROXY_HOPS                proxies in front of gunicorn that append X-Forwarded-For (default 0: the peer
                                  address is the client's and X-Forwarded-For is ignored, as anyone can send it)

Counters are fixed one-minute windows in ``rate_limit_windows``, shared by every worker process: they are read
and bumped in one BEGIN IMMEDIATE transaction, and a refused request is not counted. That transaction is also
the write probe: a store that cannot commit it is reported before any model is asked. IPv6 clients are
counted per /64, which one host commonly holds whole. The day's spend comes from ``DailySpend``, read outside
that transaction; calls already with a model when the budget runs out still finish, so it can be overshot by
at most the calls in flight (CHAT_MODEL_SLOTS per process, plus WhatsApp's).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, current_app, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.settings import env_number
from bot.store import Store
from bot.web.daily_spend import DAY_S, DailySpend

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

EXTENSION_KEY = "djobea.model_gate"
WINDOW_S = 60
BUSY_RETRY_AFTER_S = 5  # a slot frees when a model answers: seconds, not minutes
STORE_RETRY_AFTER_S = 30  # a full or read-only disk needs an operator
CLOSED_RETRY_AFTER_S = 3600  # budget 0: nothing will age out of the window


class LimitSettingsError(ValueError):
    """A limit setting has a value we cannot use; the message names the variable. Raised at start-up."""


@dataclass(frozen=True)
class LimitSettings:
    model_slots: int = 2
    session_per_minute: int = 10
    ip_per_minute: int = 30
    daily_budget_usd: float = 10.0
    trusted_proxy_hops: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LimitSettings:
        default = cls()
        return cls(
            model_slots=int(_number(env, "CHAT_MODEL_SLOTS", default.model_slots, 1, integer=True)),
            session_per_minute=int(
                _number(env, "CHAT_SESSION_REQUESTS_PER_MINUTE", default.session_per_minute, 1, integer=True)
            ),
            ip_per_minute=int(_number(env, "CHAT_IP_REQUESTS_PER_MINUTE", default.ip_per_minute, 1, integer=True)),
            daily_budget_usd=_number(env, "LLM_DAILY_BUDGET_USD", default.daily_budget_usd, 0),
            trusted_proxy_hops=int(_number(env, "TRUSTED_PROXY_HOPS", default.trusted_proxy_hops, 0, integer=True)),
        )


@dataclass(frozen=True)
class Refusal:
    status: int  # 429 or 503
    reason: str  # busy | session_rate | ip_rate | daily_budget | store_unavailable
    detail: str
    retry_after_s: int


class Refused(Exception):
    """A request the gate turned away; answered with ``refusal_response`` by the routes' blueprints."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


def store_unavailable() -> Refusal:
    return Refusal(
        503, "store_unavailable", "the database cannot take a write now; nothing was done", STORE_RETRY_AFTER_S
    )


class ModelGate:
    """The limits of one web process: its slots (in memory, per process) and the shared counters (in the store)."""

    def __init__(self, store: Store, settings: LimitSettings, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.spend = DailySpend(store, clock)
        self._slots = threading.BoundedSemaphore(settings.model_slots)

    @contextlib.contextmanager
    def admitted(self, route: str, client: str, session: str | None = None) -> Iterator[None]:
        """Hold a model slot for the block, once the request is counted; raises ``Refused`` otherwise.

        ``route`` names the counters (chat, suggestions); ``client`` is ``client_key(address)``; ``session``
        the conversation key of an authenticated chat session, if any.
        """
        if not self._slots.acquire(blocking=False):
            raise Refused(
                Refusal(503, "busy", "every model slot of this server is taken; try again", BUSY_RETRY_AFTER_S)
            )
        try:
            self._count(route, client, session)
            yield
        finally:
            self._slots.release()

    def _count(self, route: str, client: str, session: str | None) -> None:
        now = self.clock()
        window = math.floor(now / WINDOW_S) * WINDOW_S
        limits = [(f"{route}:ip:{client}", self.settings.ip_per_minute, "ip_rate", "this address")]
        if session:
            limits.insert(
                0, (f"{route}:session:{session}", self.settings.session_per_minute, "session_rate", "this chat session")
            )
        try:
            # The spend is read before the write lock is taken: it needs no lock, and webhooks wait on that one.
            over_budget = self._over_budget(now)
            with self.store.immediate() as db:
                refusal = self._over_a_limit(db, limits, window, now) or over_budget
                if refusal is None:
                    for key, *_ in limits:
                        db.execute(
                            "insert into rate_limit_windows (key, window_start, hits) values (?, ?, 1)"
                            " on conflict (key, window_start) do update set hits = hits + 1",
                            [key, window],
                        )
                    db.execute("delete from rate_limit_windows where window_start < ?", [window - WINDOW_S])
        except sqlite3.Error as exc:
            log.warning("refused a %s request: the store cannot take a write (%s)", route, exc)
            self.store.close()  # a connection opened during the outage stays read-only: start afresh
            raise Refused(store_unavailable()) from exc
        if refusal is not None:
            raise Refused(refusal)

    def _over_a_limit(self, db, limits: list[tuple[str, int, str, str]], window: float, now: float) -> Refusal | None:
        for key, limit, reason, whose in limits:
            row = db.execute(
                "select hits from rate_limit_windows where key = ? and window_start = ?", [key, window]
            ).fetchone()
            if row and row[0] >= limit:
                retry = max(1, math.ceil(window + WINDOW_S - now))
                return Refusal(429, reason, f"{whose} made {limit} requests this minute, the most allowed", retry)
        return None

    def _over_budget(self, now: float) -> Refusal | None:
        budget = self.settings.daily_budget_usd
        spent = self.spend.last_24h()
        if spent < budget:
            return None
        oldest = self.spend.oldest_paid_call()
        retry = max(1, math.ceil(oldest + DAY_S - now)) if oldest is not None else CLOSED_RETRY_AFTER_S
        detail = f"the daily LLM budget (LLM_DAILY_BUDGET_USD={budget:g}) is spent: {spent:.4f} USD in the last 24 h"
        return Refusal(429, "daily_budget", detail, retry)


def client_key(address: str | None) -> str:
    """What the per-address limit counts: the IP, or its /64 for IPv6 (one host commonly holds a whole /64)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        return str(mapped) if mapped else str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def init_app(app: Flask, services: Services) -> None:
    """Install the limits on ``app``: this process's ``ModelGate`` and, for TRUSTED_PROXY_HOPS, ProxyFix."""
    settings = services.limit_settings
    app.extensions[EXTENSION_KEY] = ModelGate(services.store, settings, services.clock)
    if settings.trusted_proxy_hops:
        # The client address is the one the nearest trusted proxy saw; nothing else of X-Forwarded-* is taken.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]


def model_gate(app: Flask) -> ModelGate:
    return app.extensions[EXTENSION_KEY]


def refusal_response(refusal: Refusal) -> Response:
    error = "Too Many Requests" if refusal.status == 429 else "Service Unavailable"
    response = jsonify(error=error, detail=refusal.detail, reason=refusal.reason)
    response.status_code = refusal.status
    response.headers["Retry-After"] = str(refusal.retry_after_s)
    return response


def answer_refusals(blueprint: Blueprint) -> None:
    """On ``blueprint``'s routes, answer ``Refused`` as its refusal and any SQLite error as 503 store_unavailable
    (a write that fails after the gate, e.g. the disk filled while the model was answering), never 500.
    Called once, where the blueprint is defined."""

    @blueprint.errorhandler(Refused)
    def _refused(error: Refused) -> Response:
        return refusal_response(error.refusal)

    @blueprint.errorhandler(sqlite3.Error)
    def _store_error(error: sqlite3.Error) -> Response:
        log.warning("answered 503: the store failed during the request (%s)", error)
        model_gate(current_app).store.close()  # also ends a transaction a failed COMMIT left open
        return refusal_response(store_unavailable())


_number = partial(env_number, error=LimitSettingsError)
