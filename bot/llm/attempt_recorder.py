"""``AttemptRecorder``: the LiteLLM callback through which every attempt lands in ``llm_calls``.

An attempt lands once: its ``Attempt`` row is built from what LiteLLM reports, written by
``CallLedger.write``, and ``ProviderHealth`` moves by its outcome; only then does ``LLMService``
decide what to do next. When LiteLLM (1.110, sync ``Router.completion``) reports:

- a failure: ``log_failure_event`` runs in the calling thread before the exception reaches
  ``LLMService``, so the attempt has landed by the time the service sees the error;
- a success: ``log_success_event`` runs later on LiteLLM's logging thread pool, which drops it when
  its backlog is full, and no synchronous hook carries the parsed reply with its usage and cost.
  So ``LLMService`` waits for it (``callback_wait_s``) and, only if it does not come, hands the
  response it holds to ``land_response`` (``recorded_by = 'llm_service'``). The first report wins.

This module imports litellm; ``LLMService`` imports it when it builds its first Router.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from bot.llm.call_ledger import Attempt, CallLedger
from bot.llm.error_kinds import Classified, ErrorKind, classify
from bot.llm.health import HealthRecord, ProviderHealth
from bot.llm.router_config import Deployment
from bot.redaction import redact_secrets

BY_CALLBACK = "litellm_callback"
BY_SERVICE = "llm_service"

# What an attempt's outcome is, apart from the facts the recorder knew before the call.
_Verdict = tuple[Classified | None, dict[str, Any]]


@dataclass
class _InFlight:
    """What the recorder needs of an attempt LiteLLM has not reported yet: LiteLLM only passes on its id."""

    request_id: str
    purpose: str
    deployment: Deployment
    fallback_depth: int
    retry_index: int
    ledger: CallLedger
    health: ProviderHealth
    actor: str
    seen: HealthRecord | None  # the provider's health when the attempt began
    landed: Future[Attempt] = field(default_factory=Future)


class AttemptRecorder(CustomLogger):
    """Lands the attempts ``LLMService`` has started in this process, each once.

    It holds only the attempts in flight in this process; the facts go to SQLite.
    """

    METADATA_KEY = "djobea_attempt_id"  # the request metadata LiteLLM hands back to the callback

    def __init__(self) -> None:
        super().__init__()
        self._in_flight: dict[str, _InFlight] = {}
        self._lock = threading.Lock()

    def expect(
        self,
        attempt_id: str,
        *,
        request_id: str,
        purpose: str,
        deployment: Deployment,
        fallback_depth: int,
        retry_index: int,
        ledger: CallLedger,
        health: ProviderHealth,
        actor: str,
        seen: HealthRecord | None = None,
    ) -> Future[Attempt]:
        """Register an attempt about to be made; the future resolves to its row once it has landed."""
        flight = _InFlight(request_id, purpose, deployment, fallback_depth, retry_index, ledger, health, actor, seen)
        with self._lock:
            self._in_flight[attempt_id] = flight
        return flight.landed

    def land_response(
        self,
        attempt_id: str,
        response: Any,
        started: float,
        ended: float,
        recorded_by: str = BY_SERVICE,
        cost: float | None = None,
    ) -> None:
        """The attempt returned ``response``: empty text or a content filter still counts as a failure."""
        self._land(attempt_id, lambda deployment: _returned(response, cost), started, ended, recorded_by)

    def land_error(
        self, attempt_id: str, error: BaseException | None, started: float, ended: float, recorded_by: str = BY_SERVICE
    ) -> None:
        """The attempt raised ``error``: classify what the provider sent."""
        self._land(attempt_id, lambda deployment: _raised(deployment, error), started, ended, recorded_by)

    def _land(
        self, attempt_id: str, judge: Callable[[Deployment], _Verdict], started: float, ended: float, recorded_by: str
    ) -> None:
        with self._lock:
            flight = self._in_flight.pop(attempt_id, None)
        if flight is None:
            return  # not an LLMService attempt, or it has landed already
        try:
            deployment = flight.deployment
            classified, facts = judge(deployment)
            attempt = Attempt(
                id=attempt_id,
                request_id=flight.request_id,
                started_at=started,
                purpose=flight.purpose,
                provider=deployment.name,
                model=deployment.model,
                deployment_id=str(deployment.litellm_entry["model_info"]["id"]),
                outcome="success" if classified is None else "failure",
                error_kind=classified.kind.value if classified else None,
                http_status=classified.status if classified else 200,
                latency_ms=max(0.0, (ended - started) * 1000),
                fallback_depth=flight.fallback_depth,
                retry_index=flight.retry_index,
                recorded_by=recorded_by,
                **facts,
            )
            flight.ledger.write(attempt)
            if classified is None:
                flight.health.record_success(deployment.name, actor=flight.actor)
            else:
                flight.health.record_failure(
                    deployment.name, classified, attempt.error_message or "", flight.actor, flight.seen
                )
        except Exception as exc:  # inside a callback LiteLLM would swallow it: the waiting service raises it
            flight.landed.set_exception(exc)
        else:
            flight.landed.set_result(attempt)

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
        attempt_id = metadata.get(self.METADATA_KEY)
        if not attempt_id:
            return  # a call that did not come through LLMService
        started, ended = _seconds(start_time), _seconds(end_time)
        exception = kwargs.get("exception")
        if response_obj is not None and exception is None:
            self.land_response(attempt_id, response_obj, started, ended, BY_CALLBACK, kwargs.get("response_cost"))
        else:
            self.land_error(attempt_id, exception, started, ended, BY_CALLBACK)


def _returned(response: Any, cost: float | None) -> _Verdict:
    choice = response.choices[0] if getattr(response, "choices", None) else None
    text = (getattr(getattr(choice, "message", None), "content", None) or "") if choice else ""
    if choice is None and isinstance(getattr(response, "text", None), str):  # a TranscriptionResponse
        text = response.text
    usage = getattr(response, "usage", None)
    if cost is None:  # LiteLLM prices the reply before returning it, so the service's copy has it too
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    # Chat usage has prompt/completion tokens; a transcription's is billed by duration (whisper: no tokens) or
    # reports input/output tokens (gpt-4o-transcribe).
    input_tokens = _int_or_none(getattr(usage, "prompt_tokens", None) or getattr(usage, "input_tokens", None))
    output_tokens = _int_or_none(getattr(usage, "completion_tokens", None) or getattr(usage, "output_tokens", None))
    facts: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
    if getattr(choice, "finish_reason", None) == "content_filter":
        facts["error_message"] = "reply blocked by content filter"
        return Classified(ErrorKind.CONTENT_POLICY, 200, None), facts
    if not text.strip():
        facts["error_message"] = "empty reply"
        return Classified(ErrorKind.BAD_OUTPUT, 200, None), facts
    return None, facts


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _raised(deployment: Deployment, error: BaseException | None) -> _Verdict:
    status = getattr(error, "status_code", None)
    status = status if isinstance(status, int) else None
    message = redact_secrets(_describe(error), known_secrets=(deployment.api_key,))
    return classify(deployment.family, status, message, _headers(error)), {"error_message": message}


def _seconds(moment: Any) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else time.time()


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


_install_lock = threading.Lock()
_installed: AttemptRecorder | None = None


def installed_recorder() -> AttemptRecorder:
    """This process's ``AttemptRecorder``, registered with LiteLLM once.

    LiteLLM's callback list is process-wide, so the recorder is too; it keeps only attempts in
    flight in this process, never shared state.
    """
    global _installed
    with _install_lock:
        if _installed is None:
            litellm.suppress_debug_info = True
            logging.getLogger("LiteLLM").setLevel(logging.WARNING)
            _installed = AttemptRecorder()
            litellm.callbacks = [*litellm.callbacks, _installed]
        return _installed
