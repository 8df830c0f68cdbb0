"""``AttemptRecorder``: the LiteLLM callback that turns each provider call into an ``llm_calls`` row
and feeds ``ProviderHealth``.

LiteLLM runs failure callbacks before the exception reaches us, but success callbacks on its own
logging thread after the reply is returned, and may drop them under backlog. So ``LLMService``
registers each attempt with ``expect`` and waits (briefly) for it to ``land``: policy decisions are
then taken on recorded facts, and if the callback never comes the service records the attempt
itself, so nothing is lost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from bot.llm.call_ledger import CallLedger, CallRecord
from bot.llm.error_kinds import Classified, ErrorKind, classify
from bot.llm.health import ProviderHealth
from bot.llm.router_config import Deployment
from bot.redaction import redact_secrets

METADATA_KEY = "djobea_attempt_id"


@dataclass
class AttemptContext:
    """What the recorder needs to know about an attempt that LiteLLM does not tell it."""

    attempt_id: str
    request_id: str
    purpose: str
    deployment: Deployment
    fallback_depth: int
    retry_index: int
    ledger: CallLedger
    health: ProviderHealth
    actor: str = "traffic"


@dataclass
class LandedAttempt:
    record: CallRecord
    classified: Classified | None  # None on success
    text: str | None
    parsed: Any = None  # what the caller's validator made of ``text``


@dataclass
class PendingAttempt:
    context: AttemptContext
    landed: threading.Event = field(default_factory=threading.Event)
    result: LandedAttempt | None = None


class AttemptRecorder(CustomLogger):
    """Process-local router of LiteLLM events to the attempts LLMService is waiting on.

    It holds no shared state, only the attempts in flight in this process; the facts go to SQLite.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, PendingAttempt] = {}
        self._lock = threading.Lock()

    def expect(self, context: AttemptContext) -> PendingAttempt:
        pending = PendingAttempt(context)
        with self._lock:
            self._pending[context.attempt_id] = pending
        return pending

    def land(self, pending: PendingAttempt, result: LandedAttempt) -> LandedAttempt:
        """Record the attempt once: the first of the callback and the service's own fallback wins."""
        with self._lock:
            if self._pending.pop(pending.context.attempt_id, None) is None:
                return pending.result  # type: ignore[return-value]  # already landed
            pending.result = result
        context = pending.context
        try:
            context.ledger.write(result.record)
            if result.classified is None:
                context.health.record_success(context.deployment.name, actor=context.actor)
            else:
                context.health.record_failure(
                    context.deployment.name, result.classified, result.record.error_message or "", context.actor
                )
        finally:
            pending.landed.set()
        return result

    # LiteLLM's hooks: sync calls use the first two, async ones the last two.
    def log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._on_event(kwargs, response_obj, start_time, end_time)

    def log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._on_event(kwargs, None, start_time, end_time)

    async def async_log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._on_event(kwargs, response_obj, start_time, end_time)

    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._on_event(kwargs, None, start_time, end_time)

    def _on_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        attempt_id = metadata.get(METADATA_KEY)
        with self._lock:
            pending = self._pending.get(attempt_id) if attempt_id else None
        if pending is None:
            return  # a call that did not come through LLMService, or already recorded
        started = start_time.timestamp() if hasattr(start_time, "timestamp") else time.time()
        ended = end_time.timestamp() if hasattr(end_time, "timestamp") else time.time()
        exception = kwargs.get("exception")
        if response_obj is not None and exception is None:
            result = success_result(
                pending.context, response_obj, kwargs.get("response_cost"), started, ended, "litellm_callback"
            )
        else:
            result = failure_result(pending.context, exception, started, ended, "litellm_callback")
        self.land(pending, result)


def success_result(
    context: AttemptContext, response: Any, cost: float | None, started: float, ended: float, recorded_by: str
) -> LandedAttempt:
    """An attempt that returned a completion. Empty text or a content filter counts as a failure."""
    choice = response.choices[0] if getattr(response, "choices", None) else None
    text = (getattr(getattr(choice, "message", None), "content", None) or "") if choice else ""
    usage = getattr(response, "usage", None)
    if cost is None:
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    classified = None
    message = None
    if getattr(choice, "finish_reason", None) == "content_filter":
        classified, message = Classified(ErrorKind.CONTENT_POLICY, 200, None), "reply blocked by content filter"
    elif not text.strip():
        classified, message = Classified(ErrorKind.BAD_OUTPUT, 200, None), "empty reply"
    record = _record(context, started, ended, recorded_by, classified, message)
    record.input_tokens = getattr(usage, "prompt_tokens", None)
    record.output_tokens = getattr(usage, "completion_tokens", None)
    record.cost_usd = cost
    return LandedAttempt(record, classified, text if classified is None else None)


def failure_result(
    context: AttemptContext, error: BaseException | None, started: float, ended: float, recorded_by: str
) -> LandedAttempt:
    """An attempt that raised: classify what the provider sent."""
    status = getattr(error, "status_code", None)
    status = status if isinstance(status, int) else None
    message = redact_secrets(_describe(error), known_secrets=(context.deployment.api_key,))
    classified = classify(context.deployment.family, status, message, _headers(error))
    record = _record(context, started, ended, recorded_by, classified, message)
    return LandedAttempt(record, classified, None)


def _record(
    context: AttemptContext,
    started: float,
    ended: float,
    recorded_by: str,
    classified: Classified | None,
    message: str | None,
) -> CallRecord:
    return CallRecord(
        id=context.attempt_id,
        request_id=context.request_id,
        started_at=started,
        purpose=context.purpose,
        provider=context.deployment.name,
        model=context.deployment.model,
        deployment_id=str(context.deployment.litellm_entry["model_info"]["id"]),
        outcome="success" if classified is None else "failure",
        error_kind=classified.kind.value if classified else None,
        http_status=classified.status if classified else 200,
        latency_ms=max(0.0, (ended - started) * 1000),
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
        fallback_depth=context.fallback_depth,
        retry_index=context.retry_index,
        error_message=message,
        recorded_by=recorded_by,
    )


def _describe(error: BaseException | None) -> str:
    """The error's own text plus the names of its causes (e.g. httpx.ConnectError), for classification."""
    if error is None:
        return "unknown error"
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__ or error.__context__
    while cause is not None and len(parts) < 4:
        parts.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return " | ".join(parts)


def _headers(error: BaseException | None) -> dict[str, str]:
    for attribute in ("litellm_response_headers", "headers"):
        headers = getattr(error, attribute, None)
        if headers:
            return {str(k): str(v) for k, v in dict(headers).items()}
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    return {str(k): str(v) for k, v in dict(headers).items()} if headers else {}
