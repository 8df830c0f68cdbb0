"""What went wrong when a provider was called, and what we do about it.

Every failure is classified into one ``ErrorKind``; each kind has one ``KindPolicy``::

    ErrorKind
    ├── the provider cannot serve us until someone acts   -> BENCH (until a probe passes or an admin resets)
    │   ├── CREDIT_EXHAUSTED   Anthropic 400 "credit balance is too low", OpenAI 429 insufficient_quota,
    │   │                      Gemini 429 RESOURCE_EXHAUSTED on a per-day quota, or about quota/billing
    │   │                      with no retryDelay (a per-minute limit says the same words plus retryDelay)
    │   └── AUTH_FAILED        401/403, Gemini 400 "API key not valid"
    ├── the provider asks us to slow down                 -> COOL until Retry-After / retryDelay, then a probe
    │   └── RATE_LIMITED       any other 429
    ├── the provider is (maybe briefly) unwell            -> TRANSIENT: fall back now, cool down when repeated
    │   ├── TIMEOUT            no answer within the attempt's share of the deadline
    │   ├── NETWORK            connection refused / reset / closed
    │   ├── SERVER_ERROR       5xx, Anthropic 529 overloaded, anything unclassified
    │   └── BAD_OUTPUT         200 with HTML, invalid JSON, empty text, or output our parser rejects
    └── the request itself is the problem                 -> NOT BLAMED: another model may still serve it
        ├── BAD_REQUEST        other 4xx
        ├── CONTEXT_TOO_LONG   prompt over the model's window
        └── CONTENT_POLICY     refused or blocked by a safety filter

A cooled provider (COOL, or TRANSIENT repeated) takes customer traffic again only once a probe has passed
after its cooldown (``bot.llm.health``); no customer request is spent testing it.

``classify_error`` reads the status, error type and message that LiteLLM passes on from the provider
and walks ``ERROR_TABLE`` top to bottom; the first matching row wins.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class ErrorKind(enum.StrEnum):
    CREDIT_EXHAUSTED = "credit_exhausted"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    NETWORK = "network"
    SERVER_ERROR = "server_error"
    BAD_OUTPUT = "bad_output"
    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    CONTENT_POLICY = "content_policy"


class Blame(enum.StrEnum):
    """How a failure changes the provider's shared health."""

    BENCH = "bench"
    COOL_FOR_RETRY_AFTER = "cool_for_retry_after"
    TRANSIENT = "transient"
    NOT_BLAMED = "not_blamed"


@dataclass(frozen=True)
class KindPolicy:
    blame: Blame
    quick_retry: bool  # one immediate retry on the same provider, if the deadline allows
    advice: str  # what an admin should do; shown in alerts and the status page


POLICIES: dict[ErrorKind, KindPolicy] = {
    ErrorKind.CREDIT_EXHAUSTED: KindPolicy(
        Blame.BENCH, False, "Credits or quota exhausted: top up the provider account, then run a test."
    ),
    ErrorKind.AUTH_FAILED: KindPolicy(
        Blame.BENCH, False, "The API key was refused: check or rotate the key, then run a test."
    ),
    ErrorKind.RATE_LIMITED: KindPolicy(
        Blame.COOL_FOR_RETRY_AFTER, False, "Rate limited: traffic goes elsewhere until the limit resets."
    ),
    # A timed-out attempt already spent its share of the deadline: retrying it would not be quick.
    ErrorKind.TIMEOUT: KindPolicy(Blame.TRANSIENT, False, "Timeouts: the provider is slow or unreachable."),
    ErrorKind.NETWORK: KindPolicy(Blame.TRANSIENT, True, "Network errors: check connectivity to the provider."),
    ErrorKind.SERVER_ERROR: KindPolicy(Blame.TRANSIENT, True, "Provider errors (5xx/overloaded): usually passes."),
    ErrorKind.BAD_OUTPUT: KindPolicy(Blame.TRANSIENT, False, "Unusable output (HTML, bad JSON, empty)."),
    ErrorKind.BAD_REQUEST: KindPolicy(Blame.NOT_BLAMED, False, "Our request was rejected: a bug on our side."),
    ErrorKind.CONTEXT_TOO_LONG: KindPolicy(Blame.NOT_BLAMED, False, "Prompt too long for this model."),
    ErrorKind.CONTENT_POLICY: KindPolicy(Blame.NOT_BLAMED, False, "Blocked by the provider's content policy."),
}

# Provider families as LiteLLM names them (the prefix of ``litellm_params.model``).
ANY = "*"


@dataclass(frozen=True)
class ErrorRule:
    """One row of the table: provider family, HTTP status (None = any), message pattern -> kind."""

    provider: str
    status: int | None
    pattern: re.Pattern[str] | None
    kind: ErrorKind
    example: str  # what the provider really sends; tests replay it


def _rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE | re.DOTALL)


ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule(
        "anthropic",
        400,
        _rx(r"credit balance is too low"),
        ErrorKind.CREDIT_EXHAUSTED,
        "Your credit balance is too low to access the Anthropic API.",
    ),
    ErrorRule(
        "openai",
        429,
        _rx(r"insufficient_quota|exceeded your current quota"),
        ErrorKind.CREDIT_EXHAUSTED,
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    ErrorRule(
        "gemini",
        429,
        _rx(r"PerDay|credits are depleted|^(?!.*retryDelay).*(billing|quota)"),
        ErrorKind.CREDIT_EXHAUSTED,
        "RESOURCE_EXHAUSTED: You exceeded your current quota, please check your plan and billing details.",
    ),
    ErrorRule(ANY, 401, None, ErrorKind.AUTH_FAILED, "invalid x-api-key"),
    ErrorRule(ANY, 403, None, ErrorKind.AUTH_FAILED, "PERMISSION_DENIED"),
    ErrorRule(
        "gemini",
        400,
        _rx(r"API key not valid|API_KEY_INVALID"),
        ErrorKind.AUTH_FAILED,
        "API key not valid. Please pass a valid API key.",
    ),
    ErrorRule(ANY, 429, None, ErrorKind.RATE_LIMITED, "rate_limit_error / RESOURCE_EXHAUSTED with retryDelay"),
    ErrorRule(
        ANY,
        None,
        _rx(
            r"prompt is too long|context_length_exceeded|maximum context length"
            r"|exceeds the maximum number of tokens|context window"
        ),
        ErrorKind.CONTEXT_TOO_LONG,
        "prompt is too long: 250000 tokens > 200000 maximum",
    ),
    ErrorRule(
        ANY,
        None,
        _rx(
            r"content_policy_violation|content filtering policy|blockReason|content management|safety system"
            r"|ContentPolicyViolation"
        ),
        ErrorKind.CONTENT_POLICY,
        "Output blocked by content filtering policy",
    ),
    # Gemini's 400 for a body it cannot parse is about *our* request, not its output.
    ErrorRule("gemini", 400, _rx(r"Invalid JSON payload"), ErrorKind.BAD_REQUEST, "Invalid JSON payload received."),
    ErrorRule(ANY, 408, None, ErrorKind.TIMEOUT, "litellm.Timeout: Read timed out."),
    ErrorRule(ANY, None, _rx(r"timed out|timeout"), ErrorKind.TIMEOUT, "Request timed out."),
    ErrorRule(
        ANY,
        None,
        _rx(
            r"unable to get json response|empty or invalid response|invalid json"
            r"|JSONDecodeError|Expecting value|<html|<!doctype"
        ),
        ErrorKind.BAD_OUTPUT,
        "Unable to get json response - Original Response: <html>",
    ),
    ErrorRule(
        ANY,
        None,
        _rx(
            r"connection error|connection refused|connection reset|reset by peer"
            r"|server disconnected|RemoteProtocolError|ConnectError|Name or service not known"
        ),
        ErrorKind.NETWORK,
        "Connection error.",
    ),
    ErrorRule(ANY, 400, None, ErrorKind.BAD_REQUEST, "invalid_request_error"),
    ErrorRule(ANY, 404, None, ErrorKind.BAD_REQUEST, "not_found_error"),
    ErrorRule(ANY, 422, None, ErrorKind.BAD_REQUEST, "unprocessable entity"),
)


@dataclass(frozen=True)
class Classified:
    kind: ErrorKind
    status: int | None
    retry_after_s: float | None  # from Retry-After or Gemini's retryDelay, when the provider said


def classify(
    provider_family: str, status: int | None, message: str, headers: dict[str, str] | None = None
) -> Classified:
    """Classify one failure from what the provider sent (status, body/message, headers)."""
    kind = _match(provider_family, status, message)
    return Classified(kind, status, _retry_after(message, headers or {}))


def _match(provider_family: str, status: int | None, message: str) -> ErrorKind:
    for rule in ERROR_TABLE:
        if rule.provider not in (ANY, provider_family):
            continue
        if rule.status is not None and rule.status != status:
            continue
        if rule.pattern is not None and not rule.pattern.search(message):
            continue
        return rule.kind
    if status is not None and 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.SERVER_ERROR


_RETRY_DELAY = re.compile(r"retryDelay['\"]?\s*:\s*['\"]?(\d+(?:\.\d+)?)s")
_RETRY_AFTER_TEXT = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


def _retry_after(message: str, headers: dict[str, str]) -> float | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after", "llm_provider-retry-after", "retry-after-ms"):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name.endswith("-ms") else seconds
    for pattern in (_RETRY_DELAY, _RETRY_AFTER_TEXT):
        found = pattern.search(message)
        if found:
            return float(found.group(1))
    return None


_JSON_MESSAGE = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"')
_WRAPPER_PREFIX = re.compile(r"^(?:[\w.]*(?:Error|Exception|Timeout)\s*[:-]\s*)+")


def provider_message(text: str) -> str:
    """The provider's own words from an error as LiteLLM wraps it, for admins: the JSON body's
    ``message`` when there is one ("Your credit balance is too low..."), else the text without
    LiteLLM's class-name prefixes."""
    found = _JSON_MESSAGE.search(text)
    if found:
        return found.group(1).replace('\\"', '"')
    return _WRAPPER_PREFIX.sub("", text.split(" | ")[0]).strip() or text
