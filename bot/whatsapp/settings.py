"""Settings of the WhatsApp area, read once from the environment (or a test's mapping) and checked.

TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN   REST credentials; the token also checks webhook signatures.
                                        Without both, replies are kept as sandbox messages.
TWILIO_WHATSAPP_NUMBER                  our sender, e.g. +14155238886 (whatsapp: prefix optional)
TWILIO_API_BASE                         default https://api.twilio.com (an emulated Twilio in tests)
TWILIO_WEBHOOK_SHARED_KEY               secret of a Twilio SharedKey, for webhooks signed with one
PUBLIC_BASE_URL                         the URL Twilio calls us at (https://bot.example.com): signatures
                                        are computed over it, and StatusCallback URLs are built from it
TWILIO_TIMEOUT_S                        per REST call (default 10; twilio's own default is none)
WHATSAPP_WORKER_THREADS                 conversation workers in a process that answers messages (default 64;
                                        0: none, as on the Procfile's web line, whose webhooks only store and
                                        wake the worker process). A worker thread mostly waits on the model,
                                        so size it to messages in flight: rate x model latency x 1.5, over all
                                        processes (50/s x 0.5 s = 38, 20/s x 3 s = 90); idle threads cost no
                                        CPU. Providers' own limits are kept by djobea.max_parallel_requests in
                                        router_config/providers.yaml
HOLDING_REPLY_AFTER_S                   a customer whose message has waited this long with no answer gets the
                                        holding reply once, then the answer (default 8; 0: never for waiting,
                                        only when every provider failed)
INBOUND_LEASE_S                         how long a claim lasts unrenewed (15): a killed worker's message is
                                        taken over this long after its last heartbeat at most
INBOUND_HEARTBEAT_S                     how often a worker renews the lease of the message it is working on
                                        (default a third of INBOUND_LEASE_S; at most half of it, so one
                                        renewal held up by a busy database does not lose the lease)
INBOUND_MAX_ERRORS                      unexpected errors on one message before it is given up, with an
                                        apology, so the customer's next messages go on (5)
WHATSAPP_WINDOW_HOURS                   free-form reply window after the customer's last message (24); also
                                        how long one message is retried after its own receipt

WHATSAPP_MAX_CHARS                      longest message part (1600, Twilio's limit)
INBOUND_MESSAGE_MAX_CHARS               how much of one customer message reaches a model (4096, WhatsApp's
                                        own limit); the whole message is still stored
PROMPT_HISTORY_TOKENS                   token budget of the history sent with each turn (3000): the most
                                        recent turns that fit, the open request's fields always kept

Numbers must be finite: ``nan`` or ``inf`` is refused like any other bad value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from bot.messaging.split import WHATSAPP_MAX_CHARS
from bot.messaging.twilio_gateway import TWILIO_API_BASE
from bot.settings import env_number

# Short because a heartbeat renews it while a message is worked on: only a dead worker lets it run out.
DEFAULT_LEASE_S = 15.0
# One worker process keeps 64 conversations in flight: 20 msg/s with 3 s models (benchmarks/capacity.py: 96 lengthened
# the tail at 50 msg/s, threads waiting on each other for SQLite's write lock and the GIL).
DEFAULT_THREADS = 64
# Twilio waits 15 s for our webhook; a customer who waited half that for an answer hears from us.
DEFAULT_HOLDING_AFTER_S = 8.0


class WhatsAppSettingsError(ValueError):
    """A WhatsApp setting has a value we cannot use; the message names the variable. Raised at start-up."""


@dataclass(frozen=True)
class WhatsAppSettings:
    account_sid: str | None
    auth_token: str | None
    whatsapp_number: str | None
    api_base: str
    shared_key: str | None
    public_base_url: str | None
    timeout_s: float
    worker_threads: int
    holding_after_s: float
    lease_s: float
    heartbeat_s: float
    max_errors: int
    window_s: float
    max_chars: int
    message_max_chars: int
    history_token_budget: int

    @property
    def can_send(self) -> bool:
        """True when real (or emulated) Twilio sends are configured; else outbound goes to the sandbox outbox."""
        return bool(self.account_sid and self.auth_token and self.whatsapp_number)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.auth_token, self.shared_key) if s)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WhatsAppSettings:
        public = (env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/") or None
        if public and not public.startswith(("http://", "https://")):
            raise WhatsAppSettingsError(f"PUBLIC_BASE_URL must start with http:// or https://, got {public!r}")
        api_base = (env.get("TWILIO_API_BASE") or TWILIO_API_BASE).strip().rstrip("/")
        if not api_base.startswith(("http://", "https://")):
            raise WhatsAppSettingsError(f"TWILIO_API_BASE must start with http:// or https://, got {api_base!r}")
        lease_s = _number(env, "INBOUND_LEASE_S", DEFAULT_LEASE_S, minimum=1)
        heartbeat_s = _number(env, "INBOUND_HEARTBEAT_S", lease_s / 3, minimum=0.01)
        if heartbeat_s > lease_s / 2:
            raise WhatsAppSettingsError(
                f"INBOUND_HEARTBEAT_S must be at most half of INBOUND_LEASE_S ({lease_s:g}), got {heartbeat_s:g}:"
                " a lease renewed less often is lost whenever one renewal is late"
            )
        return cls(
            account_sid=(env.get("TWILIO_ACCOUNT_SID") or "").strip() or None,
            auth_token=(env.get("TWILIO_AUTH_TOKEN") or "").strip() or None,
            whatsapp_number=(env.get("TWILIO_WHATSAPP_NUMBER") or "").strip() or None,
            api_base=api_base,
            shared_key=(env.get("TWILIO_WEBHOOK_SHARED_KEY") or "").strip() or None,
            public_base_url=public,
            timeout_s=_number(env, "TWILIO_TIMEOUT_S", 10.0, minimum=0.1),
            worker_threads=int(_number(env, "WHATSAPP_WORKER_THREADS", DEFAULT_THREADS, minimum=0, integer=True)),
            holding_after_s=_number(env, "HOLDING_REPLY_AFTER_S", DEFAULT_HOLDING_AFTER_S, minimum=0),
            lease_s=lease_s,
            heartbeat_s=heartbeat_s,
            max_errors=int(_number(env, "INBOUND_MAX_ERRORS", 5, minimum=1, integer=True)),
            window_s=_number(env, "WHATSAPP_WINDOW_HOURS", 24.0, minimum=0) * 3600,
            max_chars=int(_number(env, "WHATSAPP_MAX_CHARS", WHATSAPP_MAX_CHARS, minimum=50, integer=True)),
            message_max_chars=int(_number(env, "INBOUND_MESSAGE_MAX_CHARS", 4096, minimum=100, integer=True)),
            history_token_budget=int(_number(env, "PROMPT_HISTORY_TOKENS", 3000, minimum=200, integer=True)),
        )


_number = partial(env_number, error=WhatsAppSettingsError)
