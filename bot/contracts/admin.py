"""The contracts of the admin API under ``/api/llm`` and of ``/api/openapi.json``.

Bodies are closed (an unknown field is a 400 naming it) and optional as a whole (no body means the defaults).
A provider name must be one this deployment configured: the document declares them as the ``ProviderName``
enum, and the models check them against the ``providers`` of the validation context.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from bot.contracts import PROVIDER_NAME, Operation, Reply, RequestModel, ResponseModel, omittable
from bot.contracts.errors import TOO_LARGE, error

ProviderName = Annotated[str, WithJsonSchema(PROVIDER_NAME)]
Actor = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._@-]{1,40}$",
        description="who acts, recorded in provider_events as admin:<by> (default: api)",
    ),
]
ProviderStateName = Literal["healthy", "degraded", "cooling_down", "benched", "disabled"]
Epoch = Annotated[float | None, Field(description="Unix time in seconds")]


def configured(info: ValidationInfo) -> list[str] | None:
    return (info.context or {}).get("providers")


def check_provider(name: str, info: ValidationInfo) -> str:
    names = configured(info)
    if names is not None and name not in names:
        raise PydanticCustomError(
            "unknown_provider",
            "unknown provider {given}; configured: {configured}",
            {"given": repr(name[:40]), "configured": ", ".join(names)},
        )
    return name


class AdminBody(RequestModel):
    """A JSON object body of the admin API: closed, every field optional."""

    model_config = ConfigDict(extra="forbid")
    PROBLEMS: ClassVar[dict[str, str]] = {
        "provider:string_type": "provider: must be a string",
        "by:string_type": "by: must be 1-40 characters among letters, digits and . _ @ -",
        "by:string_pattern_mismatch": "by: must be 1-40 characters among letters, digits and . _ @ -",
    }


class ActorRequest(AdminBody):
    by: Actor = "api"


class ProviderRequest(AdminBody):
    """Which provider (null or absent: every one) and who asks."""

    provider: ProviderName | None = None
    by: Actor = "api"

    @field_validator("provider")
    @classmethod
    def _configured(cls, name: str | None, info: ValidationInfo) -> str | None:
        return None if name is None else check_provider(name, info)


class ProviderActionPath(RequestModel):
    """``/api/llm/providers/{name}/{action}``: a configured provider, and what to do with it (else a 404)."""

    PROBLEMS: ClassVar[dict[str, str]] = {"action:literal_error": "no such action {input}: use enable or disable"}

    action: Literal["enable", "disable"]  # checked first, as a bad action makes the name irrelevant
    name: ProviderName

    @field_validator("name")
    @classmethod
    def _configured(cls, name: str, info: ValidationInfo) -> str:
        if (names := configured(info)) is not None and name not in names:
            raise PydanticCustomError("unknown_provider", "no configured provider {given}", {"given": repr(name[:40])})
        return name

    @classmethod
    def problem(cls, error: Any) -> str:
        # A path that names nothing is a 404 whose detail reads on its own, without "name:".
        return error["msg"] if error["type"] == "unknown_provider" else super().problem(error)


# --- GET /api/llm/analytics query ------------------------------------------------------------------------

DEFAULT_WINDOW_S = 24 * 3600.0
TIME_LIMIT_S = 1e11  # about the year 5138: a larger Unix time is a mistake in the query
UNIX_SECONDS = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")  # a JSON number
RFC3339_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
RFC3339_TIME = re.compile(r"[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")
GREGORIAN_CYCLE_S = 146097 * 86400  # 400 years: year 0000 is read as 0400, then moved back


def parse_time(raw: object) -> float:
    """Unix seconds (a JSON number within +-1e11), an RFC 3339 date-time, or a date (midnight UTC)."""
    if not isinstance(raw, str):
        raise PydanticCustomError("time_type", "expected Unix seconds or an ISO 8601 time")
    if UNIX_SECONDS.fullmatch(raw):
        value = float(raw)
        if not math.isfinite(value) or abs(value) > TIME_LIMIT_S:
            raise PydanticCustomError("time_range", "out of range")
        return value
    date = RFC3339_DATE.match(raw)
    rest = raw[date.end() :] if date else ""
    clock = RFC3339_TIME.fullmatch(rest) if rest else None
    if date is None or (rest and clock is None):
        raise PydanticCustomError(
            "time_format",
            "expected Unix seconds or an ISO 8601 time (RFC 3339, e.g. 2025-01-31T08:00:00Z, or a date), got {got}",
            {"got": repr(raw[:40])},
        )
    year, month, day = (int(part) for part in date.groups())
    hour = minute = second = 0
    fraction, offset_s = 0.0, 0
    if clock is not None:
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3])
        fraction = float(clock[4] or 0)
        if clock[6]:
            offset_h, offset_m = int(clock[7]), int(clock[8])
            if offset_h > 23 or offset_m > 59:
                raise PydanticCustomError("time_format", "the UTC offset is not a valid time")
            offset_s = (1 if clock[6] == "+" else -1) * (offset_h * 3600 + offset_m * 60)
    try:
        # A leap second (:60) is the next second: RFC 3339 allows it, datetime does not.
        base = datetime(year + (400 if year == 0 else 0), month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError as exc:
        raise PydanticCustomError("time_format", "not a valid date and time ({why})", {"why": str(exc)}) from None
    if second > 60:
        raise PydanticCustomError("time_format", "not a valid date and time (second must be in 0..60)")
    shift = GREGORIAN_CYCLE_S if year == 0 else 0
    return base.timestamp() - shift + max(0, second - 59) + fraction - offset_s


TimePoint = Annotated[
    float,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": -TIME_LIMIT_S, "maximum": TIME_LIMIT_S},
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ]
        }
    ),
]


class AnalyticsQuery(RequestModel):
    """The query of ``GET /api/llm/analytics``. Also checked by ``TimeRange``, as JSON Schema cannot say it:
    ``since`` must be before ``until``, and the range must fit in 2000 buckets."""

    model_config = ConfigDict(extra="forbid")
    KEY_NOUN: ClassVar[str] = "query parameter"
    PROBLEMS: ClassVar[dict[str, str]] = {
        "bucket:literal_error": "bucket: must be one of minute, hour, day, got {input}"
    }

    since: TimePoint = omittable(description="Unix seconds or an RFC 3339 date-time or date (default: until - 24 h)")
    until: TimePoint = omittable(description="Unix seconds or an RFC 3339 date-time or date (default: now)")
    bucket: Literal["minute", "hour", "day"] = "hour"

    def span(self, now: float) -> tuple[float, float]:
        """(since, until), the defaults filled in."""
        until = self.until if self.until is not None else now
        return (self.since if self.since is not None else until - DEFAULT_WINDOW_S), until


# --- responses --------------------------------------------------------------------------------------------


class Health(ResponseModel):
    status: Literal["ok", "unavailable"]
    usable_providers: int
    providers: int


class LatencyP50P95(ResponseModel):
    p50: float | None
    p95: float | None


class LatencyPercentiles(LatencyP50P95):
    p99: float | None


class LastHour(ResponseModel):
    requests: int
    successes: int
    failures: int
    success_rate: float | None
    latency_ms: LatencyP50P95


class ProviderStatus(ResponseModel):
    provider: str
    model: str
    order: int
    state: ProviderStateName
    usable: bool
    reason: str | None
    error_kind: str | None
    advice: str | None
    since: Epoch
    until: Epoch = Field(description="end of the cooldown (cooling_down only)")
    next_probe_at: Epoch = Field(description="the next scheduled self-test that will probe it")
    consecutive_failures: int
    last_success_at: Epoch
    last_failure_at: Epoch
    last_hour: LastHour


class ProbeDay(ResponseModel):
    """What the self-test probes cost on one UTC day."""

    day: str = Field(description="YYYY-MM-DD (UTC)")
    probes: int
    input_tokens: int
    output_tokens: int
    tokens: int
    cost_usd: float


class ProbesToday(ResponseModel):
    """Today's probes; ``day`` and the token split are absent before the day's first probe."""

    day: str = omittable(description="YYYY-MM-DD (UTC)")
    probes: int
    input_tokens: int = omittable()
    output_tokens: int = omittable()
    tokens: int
    cost_usd: float


class JobRun(ResponseModel):
    last_started_at: Epoch
    last_finished_at: Epoch
    holder: str | None = Field(description="host:pid of the scheduler that ran it")
    last_error: str | None
    runs: int | None


class Status(ResponseModel):
    generated_at: float
    next_provider: str | None = Field(description="the provider the next request would use")
    usable_providers: int
    providers: list[ProviderStatus]
    left_out: dict[str, str] = Field(description="configured providers left out, and why (e.g. key not set)")
    probes_today: ProbesToday
    scheduler: dict[str, JobRun] = Field(description="the last run of each scheduled job")


class ProbeResult(ResponseModel):
    provider: str
    why: Literal["benched", "cooldown_over", "idle", "requested"]
    outcome: Literal["success", "failure"]
    error_kind: str | None
    latency_ms: float
    model: str
    http_status: int | None
    state: ProviderStateName = Field(description="the provider's state after the probe")


class ProbeResults(ResponseModel):
    results: list[ProbeResult]


class Stats(ResponseModel):
    requests: int = Field(description="calls made to the provider (attempts)")
    successes: int
    failures: int
    failures_by_kind: dict[str, int]
    success_rate: float | None
    latency_ms: LatencyPercentiles
    input_tokens: int
    output_tokens: int
    cost_usd: float
    attempt_share: float | None
    load_share: float | None = Field(description="share of answered requests this provider served")
    fallback_rate: float | None = Field(description="share of its answers given as a fallback")


class PurposeStats(Stats):
    purpose: str


class ProviderAnalytics(Stats):
    provider: str
    seconds_by_state: dict[str, float] = Field(description="seconds benched, cooling_down and disabled")
    benched_seconds: float
    purposes: list[PurposeStats]


class SeriesPoint(ResponseModel):
    start: float
    provider: str
    requests: int
    successes: int
    failures: int
    success_rate: float | None
    latency_ms: LatencyPercentiles
    tokens: int
    cost_usd: float


class RequestTotals(ResponseModel):
    requests: int = Field(description="customer requests (probes excluded)")
    answered: int
    answered_by_fallback: int
    unanswered: int
    fallback_rate: float | None
    attempts: int
    cost_usd: float
    tokens: int


class Analytics(ResponseModel):
    since: float
    until: float
    bucket: Literal["minute", "hour", "day"]
    bucket_seconds: int
    totals: RequestTotals
    providers: list[ProviderAnalytics]
    series: list[SeriesPoint]
    selftest_by_day: list[ProbeDay]


class ProviderHealthState(ResponseModel):
    provider: str
    state: ProviderStateName
    reason: str | None


class ResetReply(ResponseModel):
    reset: list[str]
    actor: str = Field(description="admin:<by>, as recorded in provider_events")
    providers: list[ProviderHealthState]


class ToggleReply(ResponseModel):
    actor: str = Field(description="admin:<by>, as recorded in provider_events")
    providers: list[ProviderHealthState]


class ConfiguredProvider(ResponseModel):
    provider: str
    family: str = Field(description="LiteLLM provider prefix: anthropic, gemini, openai, ...")
    model: str
    order: int
    timeout_s: float
    api_base: str | None = Field(description="secrets redacted")
    api_key: str | None = Field(description="masked: ***last4")
    state: ProviderStateName


class Providers(ResponseModel):
    providers: list[ConfiguredProvider]
    left_out: dict[str, str]
    config: str = Field(description="the router config file's name")


class OpenApiDocument(ResponseModel):
    """This document: generated from these models when first asked for."""

    openapi: Literal["3.1.0"]
    info: dict[str, str]
    paths: dict[str, dict[str, Any]]
    components: dict[str, Any]


# --- operations -------------------------------------------------------------------------------------------

BAD_BODY = {
    400: error("bad body: not a JSON object, an unknown field, a bad value or an unknown provider"),
    **TOO_LARGE,
}

HEALTH = Operation(
    summary="200 while at least one provider can take requests, 503 when none can",
    tags=("public",),
    responses={200: Reply(Health, "some provider is usable"), 503: Reply(Health, "no provider is usable")},
)
STATUS = Operation(
    summary="Per provider state, reason, times, last-hour success rate and latency; next provider",
    tags=("admin",),
    admin=True,
    responses={200: Reply(Status, "status")},
)
TEST = Operation(
    summary="Probe one provider (or all not disabled) now with a tiny prompt (max_tokens 5)",
    tags=("admin",),
    admin=True,
    body=ProviderRequest,
    responses={200: Reply(ProbeResults, "probe results"), **BAD_BODY},
)
ANALYTICS = Operation(
    summary="Per provider and purpose: counts, error kinds, latency percentiles, tokens, cost, load",
    tags=("admin",),
    admin=True,
    query=AnalyticsQuery,
    responses={
        200: Reply(Analytics, "analytics"),
        400: error("bad since, until or bucket, since not before until, over 2000 buckets, or an unknown parameter"),
    },
)
RESET = Operation(
    summary="Clear benched/cooling state of one provider (or all); disabled ones stay disabled",
    tags=("admin",),
    admin=True,
    body=ProviderRequest,
    responses={200: Reply(ResetReply, "providers after the reset"), **BAD_BODY},
)
TOGGLE = Operation(
    summary="Disable a provider by hand (no traffic, no probes) or enable it again",
    tags=("admin",),
    admin=True,
    path=ProviderActionPath,
    body=ActorRequest,
    responses={
        200: Reply(ToggleReply, "the provider after the change"),
        **BAD_BODY,
        404: error("unknown provider or action"),
    },
)
PROVIDERS = Operation(
    summary="Configured providers in priority order: models, timeouts, base URLs, keys masked",
    tags=("admin",),
    admin=True,
    responses={200: Reply(Providers, "providers")},
)
OPENAPI = Operation(
    summary="This document, generated from the request and response models",
    tags=("public",),
    responses={200: Reply(OpenApiDocument, "the OpenAPI 3.1 document")},
)
