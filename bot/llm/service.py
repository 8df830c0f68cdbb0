"""``LLMService.complete``: one answer from the first usable provider, within one deadline.

Providers are tried in config order. Before each call the shared ``ProviderHealth`` is asked, so a
provider benched or cooling in any process gets no request from this one. The policy of the error
kind decides what happens next: one quick retry (network, 5xx), or straight to the next provider.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import litellm
from litellm import Router

from bot.llm.attempt_recorder import (
    METADATA_KEY,
    AttemptContext,
    AttemptRecorder,
    LandedAttempt,
    failure_result,
    success_result,
)
from bot.llm.call_ledger import CallLedger
from bot.llm.error_kinds import POLICIES, Classified, ErrorKind
from bot.llm.errors import AllProvidersFailed, Attempt, RouterConfigError
from bot.llm.health import Admission, ProviderHealth
from bot.llm.router_config import Deployment, RouterSetup
from bot.redaction import redact_secrets
from bot.store import Store

log = logging.getLogger(__name__)

Message = dict[str, str]
PROBE_PROMPT: list[Message] = [{"role": "user", "content": "Reply with OK."}]
PROBE_MAX_TOKENS = 5


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    request_id: str
    attempts: list[Attempt] = field(default_factory=list)
    parsed: Any = None  # what ``validate`` returned, when given


class LLMService:
    """The multi-provider LLM client the rest of Djobea uses."""

    def __init__(self, setup: RouterSetup, store: Store, clock: Callable[[], float] = time.time) -> None:
        if not setup.deployments:
            raise RouterConfigError(
                f"{setup.source}: no usable deployment ({'; '.join(f'{k}: {v}' for k, v in setup.left_out.items())})"
            )
        self.setup = setup
        self.store = store
        self.health = ProviderHealth(store, setup.reliability, clock)
        self.ledger = CallLedger(store)
        self._recorder = installed_recorder()
        try:
            self._router = Router(**setup.router_kwargs())
        except Exception as exc:  # LiteLLM rejects unknown settings with TypeError/ValueError
            raise RouterConfigError(f"{setup.source}: router_settings: {redact_secrets(str(exc))}") from exc

    @property
    def deployments(self) -> tuple[Deployment, ...]:
        return self.setup.deployments

    def complete(
        self,
        messages: list[Message],
        purpose: str = "chat",
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        validate: Callable[[str], Any] | None = None,
        deadline_s: float | None = None,
        request_id: str | None = None,
    ) -> Completion:
        """Ask providers in order until one gives a usable reply; raise ``AllProvidersFailed`` if none does.

        ``validate`` parses the reply; if it raises, the reply counts as bad output and the next
        provider is asked.
        """
        _check_messages(messages)
        request_id = request_id or uuid.uuid4().hex
        deadline = time.monotonic() + (deadline_s or self.setup.reliability.request_deadline_s)
        attempts: list[Attempt] = []
        skipped: dict[str, str] = {}
        for depth, deployment in enumerate(self.deployments):
            admission = self.health.admit(deployment.name)
            if admission is Admission.REFUSED:
                skipped[deployment.name] = self.health.get(deployment.name).state.value
                continue
            retries_allowed = 0 if admission is Admission.TRIAL else 1
            for retry_index in range(retries_allowed + 1):
                # The first failure may just have cooled the provider (here or in another process).
                if retry_index > 0 and self.health.admit(deployment.name) is Admission.REFUSED:
                    break
                remaining = deadline - time.monotonic()
                if remaining < self.setup.reliability.min_attempt_s:
                    raise AllProvidersFailed(attempts, skipped, " within the deadline")
                landed = self._attempt(
                    deployment,
                    messages,
                    purpose,
                    request_id,
                    depth,
                    retry_index,
                    timeout=min(deployment.timeout_s, remaining),
                    max_tokens=max_tokens,
                    temperature=temperature,
                )
                if landed.classified is None and validate is not None:
                    landed = self._validated(deployment, landed, validate)
                attempts.append(_as_attempt(landed))
                if landed.classified is None:
                    return Completion(
                        text=landed.text or "",
                        provider=deployment.name,
                        model=deployment.model,
                        request_id=request_id,
                        attempts=attempts,
                        parsed=landed.parsed,
                    )
                if not POLICIES[landed.classified.kind].quick_retry:
                    break
        raise AllProvidersFailed(attempts, skipped)

    def probe(self, provider: str, actor: str = "probe") -> Attempt:
        """Call ``provider`` now with a tiny prompt, whatever its state; success brings it back."""
        deployment = self.setup.deployment(provider)
        landed = self._attempt(
            deployment,
            PROBE_PROMPT,
            "selftest",
            uuid.uuid4().hex,
            0,
            0,
            timeout=min(deployment.timeout_s, self.setup.reliability.request_deadline_s),
            max_tokens=PROBE_MAX_TOKENS,
            temperature=None,
            actor=actor,
        )
        return _as_attempt(landed)

    def _attempt(
        self,
        deployment: Deployment,
        messages: list[Message],
        purpose: str,
        request_id: str,
        depth: int,
        retry_index: int,
        *,
        timeout: float,
        max_tokens: int | None,
        temperature: float | None,
        actor: str = "traffic",
    ) -> LandedAttempt:
        context = AttemptContext(
            attempt_id=uuid.uuid4().hex,
            request_id=request_id,
            purpose=purpose,
            deployment=deployment,
            fallback_depth=depth,
            retry_index=retry_index,
            ledger=self.ledger,
            health=self.health,
            actor=actor,
        )
        pending = self._recorder.expect(context)
        optional: dict[str, Any] = {}
        if max_tokens is not None:
            optional["max_tokens"] = max_tokens
        if temperature is not None:
            optional["temperature"] = temperature
        started = time.time()
        try:
            response = self._router.completion(
                model=deployment.name,
                messages=messages,
                timeout=timeout,
                num_retries=0,
                metadata={METADATA_KEY: context.attempt_id, "request_id": request_id, "purpose": purpose},
                **optional,
            )
        except Exception as exc:  # every provider failure, classified by the recorder
            fallback = failure_result(context, exc, started, time.time(), "llm_service")
        else:
            fallback = success_result(context, response, None, started, time.time(), "llm_service")
        if not pending.landed.wait(self.setup.reliability.callback_wait_s):
            log.warning("LiteLLM did not report attempt %s in time; recording it ourselves", context.attempt_id)
        return self._recorder.land(pending, fallback)

    def _validated(
        self, deployment: Deployment, landed: LandedAttempt, validate: Callable[[str], Any]
    ) -> LandedAttempt:
        try:
            parsed = validate(landed.text or "")
        except Exception as exc:  # any parser error means this reply is unusable
            message = redact_secrets(f"reply rejected by parser: {exc}")[:300]
            classified = Classified(ErrorKind.BAD_OUTPUT, 200, None)
            self.ledger.mark_rejected(landed.record.id, classified.kind.value, message)
            self.health.record_failure(deployment.name, classified, message)
            landed.record.outcome, landed.record.error_kind = "failure", classified.kind.value
            return LandedAttempt(landed.record, classified, None)
        return LandedAttempt(landed.record, None, landed.text, parsed)


def _check_messages(messages: list[Message]) -> None:
    """Refuse a malformed conversation here: sent on, every provider would reject it in turn."""
    if not messages:
        raise ValueError("messages must not be empty")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{index}]: role must be system, user or assistant")
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            raise ValueError(f"messages[{index}]: content must be a non-empty string")


def _as_attempt(landed: LandedAttempt) -> Attempt:
    record = landed.record
    return Attempt(
        provider=record.provider,
        model=record.model,
        outcome=record.outcome,
        error_kind=record.error_kind,
        latency_ms=record.latency_ms,
        http_status=record.http_status,
        fallback_depth=record.fallback_depth,
    )


_recorder_lock = threading.Lock()
_recorder: AttemptRecorder | None = None


def installed_recorder() -> AttemptRecorder:
    """This process's ``AttemptRecorder``, registered with LiteLLM once.

    LiteLLM's callback list is process-wide, so the recorder is too; it keeps only attempts in
    flight in this process, never shared state.
    """
    global _recorder
    with _recorder_lock:
        if _recorder is None:
            litellm.suppress_debug_info = True
            logging.getLogger("LiteLLM").setLevel(logging.WARNING)
            _recorder = AttemptRecorder()
            litellm.callbacks = [*litellm.callbacks, _recorder]
        return _recorder
