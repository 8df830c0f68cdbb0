"""``LLMService.complete``: one answer from the first usable provider, within one deadline.

Providers are tried in config order. Before each call the shared ``ProviderHealth`` is asked, so a
provider benched or cooling in any process gets no request from this one. The policy of the error
kind decides what happens next: one quick retry (network, 5xx), or straight to the next provider.

LiteLLM is imported when the first ``LLMService`` builds its Router, not with this module: it costs
seconds of CPU that a process which never calls a provider should not pay.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import TimeoutError as WaitTimedOut
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bot.llm.call_ledger import Attempt, CallLedger
from bot.llm.error_kinds import POLICIES, Classified, ErrorKind
from bot.llm.errors import AllProvidersFailed, RouterConfigError
from bot.llm.health import Admission, ProviderHealth
from bot.llm.router_config import Deployment, RouterSetup
from bot.redaction import redact_secrets
from bot.store import Store

if TYPE_CHECKING:
    from litellm import Router

    from bot.llm.attempt_recorder import AttemptRecorder

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
    attempts: list[Attempt] = field(default_factory=list)  # as recorded in llm_calls, in order
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
        self._router, self._recorder = _router_for(setup)

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
                attempt, text = self._attempt(
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
                parsed = None
                if attempt.outcome == "success" and validate is not None:
                    attempt, parsed = self._validated(deployment, attempt, text, validate)
                attempts.append(attempt)
                if attempt.outcome == "success":
                    return Completion(
                        text=text,
                        provider=deployment.name,
                        model=deployment.model,
                        request_id=request_id,
                        attempts=attempts,
                        parsed=parsed,
                    )
                if not POLICIES[ErrorKind(attempt.error_kind)].quick_retry:
                    break
        raise AllProvidersFailed(attempts, skipped)

    def probe(self, provider: str, actor: str = "probe") -> Attempt:
        """Call ``provider`` now with a tiny prompt, whatever its state; success brings it back."""
        deployment = self.setup.deployment(provider)
        attempt, _ = self._attempt(
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
        return attempt

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
    ) -> tuple[Attempt, str]:
        """One call through the Router, returned once the recorder has landed it: its row and its reply
        text ("" unless it succeeded)."""
        attempt_id = uuid.uuid4().hex
        landed = self._recorder.expect(
            attempt_id,
            request_id=request_id,
            purpose=purpose,
            deployment=deployment,
            fallback_depth=depth,
            retry_index=retry_index,
            ledger=self.ledger,
            health=self.health,
            actor=actor,
        )
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
                metadata={self._recorder.METADATA_KEY: attempt_id, "request_id": request_id, "purpose": purpose},
                **optional,
            )
        except Exception as exc:  # every provider failure: LiteLLM has reported it before raising
            if not landed.done():  # refused before LiteLLM's logging began, or its callbacks skipped it
                log.warning("LiteLLM did not report failed attempt %s; recording it ourselves", attempt_id)
                self._recorder.land_error(attempt_id, exc, started, time.time())
            return landed.result(), ""
        try:
            attempt = landed.result(timeout=self.setup.reliability.callback_wait_s)
        except WaitTimedOut:  # LiteLLM's logging pool is backed up, or dropped the report
            log.warning("LiteLLM did not report attempt %s in time; recording it ourselves", attempt_id)
            self._recorder.land_response(attempt_id, response, started, time.time())
            attempt = landed.result()
        # The recorder counts an attempt a success only when it carries non-empty text.
        return attempt, response.choices[0].message.content if attempt.outcome == "success" else ""

    def _validated(
        self, deployment: Deployment, attempt: Attempt, text: str, validate: Callable[[str], Any]
    ) -> tuple[Attempt, Any]:
        """Parse a reply; one the parser rejects turns its recorded success into bad output."""
        try:
            return attempt, validate(text)
        except Exception as exc:  # any parser error means this reply is unusable
            message = redact_secrets(f"reply rejected by parser: {exc}")[:300]
            classified = Classified(ErrorKind.BAD_OUTPUT, 200, None)
            self.ledger.mark_rejected(attempt.id, classified.kind.value, message)
            self.health.record_failure(deployment.name, classified, message)
            return replace(attempt, outcome="failure", error_kind=classified.kind.value, error_message=message), None


def _check_messages(messages: list[Message]) -> None:
    """Refuse a malformed conversation here: sent on, every provider would reject it in turn."""
    if not messages:
        raise ValueError("messages must not be empty")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{index}]: role must be system, user or assistant")
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            raise ValueError(f"messages[{index}]: content must be a non-empty string")


def _router_for(setup: RouterSetup) -> tuple[Router, AttemptRecorder]:
    """A LiteLLM Router for ``setup``, with this process's recorder registered. The first call imports litellm."""
    from litellm import Router

    from bot.llm.attempt_recorder import installed_recorder

    recorder = installed_recorder()
    try:
        return Router(**setup.router_kwargs()), recorder
    except Exception as exc:  # LiteLLM rejects unknown settings with TypeError/ValueError
        raise RouterConfigError(f"{setup.source}: router_settings: {redact_secrets(str(exc))}") from exc
