"""``LLMService.complete``: one answer from the first usable provider, within one deadline.

Providers are tried in config order. Before each call the shared ``ProviderHealth`` is asked, so a
provider benched or cooling in any process gets no request from this one; once a cooldown is over,
the first request to notice starts a probe in the background and goes on without it. The policy of the
error kind decides what happens next: one quick retry (network, 5xx), or straight to the next provider.

LiteLLM is imported when a service makes its first call (``complete`` or ``probe``) and builds its Router,
not with this module nor when a service is made: it costs seconds of CPU that a process which only reads
health or status (``python -m bot status``, a gunicorn worker before its first model call) should not pay.
"""

from __future__ import annotations

import logging
import threading
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
COOLDOWN_PROBE_ACTOR = "probe:cooldown_over"  # in provider_events: the probe a process started when a cooldown ended
# Router settings that need no LiteLLM to be checked at start: the shipped config's, each a parameter of the
# Router (tests/test_architecture.py builds one with them). A config with any other key builds its Router at
# once, so LiteLLM still refuses a misspelt one when the service is made, not on the first customer's call.
ROUTER_SETTINGS_KNOWN = frozenset({"num_retries", "disable_cooldowns", "timeout"})


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
        self._routed: tuple[Router, AttemptRecorder] | None = None
        self._routing_lock = threading.Lock()
        cap = setup.reliability.max_parallel_requests
        self._slots = {d.name: threading.BoundedSemaphore(cap) for d in setup.deployments} if cap else {}
        if not set(setup.router_settings) <= ROUTER_SETTINGS_KNOWN:
            self._routing()

    def _routing(self) -> tuple[Router, AttemptRecorder]:
        """The Router and the recorder, built on first use (the first call imports litellm)."""
        if self._routed is None:
            with self._routing_lock:  # worker threads may make their first calls at once
                if self._routed is None:
                    self._routed = _router_for(self.setup)
        return self._routed

    def prepare(self) -> None:
        """Import LiteLLM and build the Router now, so that no call pays for it: a process about to serve
        customers (a worker at start) or a benchmark timing calls."""
        self._routing()

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
        self._routing()  # before the deadline starts: importing litellm must not eat into it
        request_id = request_id or uuid.uuid4().hex
        deadline = time.monotonic() + (deadline_s or self.setup.reliability.request_deadline_s)
        attempts: list[Attempt] = []
        skipped: dict[str, str] = {}
        for depth, deployment in enumerate(self.deployments):
            admission = self.health.admit(deployment.name)
            if admission is not Admission.NORMAL:
                if admission is Admission.PROBE_DUE:  # tested off this request: the customer never waits on it
                    self._probe_in_background(deployment.name)
                skipped[deployment.name] = self.health.get(deployment.name).state.value
                continue
            for retry_index in range(2):  # the first try, and one quick retry if the error kind allows
                # The first failure may just have cooled the provider (here or in another process).
                if retry_index > 0 and self.health.admit(deployment.name) is not Admission.NORMAL:
                    break
                remaining = deadline - time.monotonic()
                if remaining < self.setup.reliability.min_attempt_s:
                    raise AllProvidersFailed(attempts, skipped, " within the deadline")
                slot = self._slots.get(deployment.name)
                # At most half of what is left is spent waiting for a slot: the other half is the next providers'.
                if slot is not None and not slot.acquire(timeout=remaining / 2):
                    skipped[deployment.name] = "busy"  # max_parallel_requests calls in flight all along
                    break
                try:
                    attempt, text = self._attempt(
                        deployment,
                        messages,
                        purpose,
                        request_id,
                        depth,
                        retry_index,
                        timeout=min(deployment.timeout_s, deadline - time.monotonic()),
                        max_tokens=max_tokens,
                        temperature=temperature,
                    )
                finally:
                    if slot is not None:
                        slot.release()
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

    def _probe_in_background(self, provider: str) -> None:
        """A cooldown is over: probe the provider on a thread of its own if this process wins the probe lease
        (the lease makes it one probe across every process; the scheduler's probe is the backstop)."""
        if self.health.claim_probe(provider):
            threading.Thread(
                target=self._background_probe, args=(provider,), name=f"probe-{provider}", daemon=True
            ).start()

    def _background_probe(self, provider: str) -> None:
        try:
            self.probe(provider, actor=COOLDOWN_PROBE_ACTOR)
        except Exception:  # a bug or a storage error: the lease expires and the next process to notice probes
            log.exception("background probe of %s failed", provider)

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
        router, recorder = self._routing()
        attempt_id = uuid.uuid4().hex
        landed = recorder.expect(
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
            response = router.completion(
                model=deployment.name,
                messages=messages,
                timeout=timeout,
                num_retries=0,
                metadata={recorder.METADATA_KEY: attempt_id, "request_id": request_id, "purpose": purpose},
                **optional,
            )
        except Exception as exc:  # every provider failure: LiteLLM has reported it before raising
            if not landed.done():  # refused before LiteLLM's logging began, or its callbacks skipped it
                log.warning("LiteLLM did not report failed attempt %s; recording it ourselves", attempt_id)
                recorder.land_error(attempt_id, exc, started, time.time())
            return landed.result(), ""
        try:
            attempt = landed.result(timeout=self.setup.reliability.callback_wait_s)
        except WaitTimedOut:  # LiteLLM's logging pool is backed up, or dropped the report
            log.warning("LiteLLM did not report attempt %s in time; recording it ourselves", attempt_id)
            recorder.land_response(attempt_id, response, started, time.time())
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
