"""``LLMService.complete``: one answer from the first usable provider, within one deadline.

Providers are tried in config order. Before each call the shared ``ProviderHealth`` is asked, so a
provider benched or cooling in any process gets no request from this one; once a cooldown is over,
the first request to notice starts a probe in the background and goes on without it. The policy of the
error kind decides what happens next: one quick retry (network, 5xx), or straight to the next provider.

A request carrying media goes only to deployments that take it: ``needs`` (``{"vision"}``, ``{"audio"}``, also read
off the messages' content parts) is checked against LiteLLM's model map (``supports_vision``,
``supports_audio_input``) or the deployment's ``model_info`` override; the others are skipped with the reason, in
the same order, health and recording rules. ``transcribe`` turns audio into text through LiteLLM's transcription
API on the ``audio_transcription`` deployments, recorded like any attempt (purpose ``transcription``).

LiteLLM is imported when a service makes its first call (``complete`` or ``probe``) and builds its Router,
not with this module nor when a service is made: it costs seconds of CPU that a process which only reads
health or status (``python -m bot status``, a gunicorn worker before its first model call) should not pay.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import TimeoutError as WaitTimedOut
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from bot.llm.call_ledger import Attempt, CallLedger
from bot.llm.error_kinds import POLICIES, Classified, ErrorKind
from bot.llm.errors import AllProvidersFailed, RouterConfigError
from bot.llm.health import Admission, ProviderHealth, ProviderState
from bot.llm.router_config import CAPABILITY_KEYS, Deployment, RouterSetup
from bot.redaction import redact_secrets
from bot.store import Store

if TYPE_CHECKING:
    from litellm import Router

    from bot.llm.attempt_recorder import AttemptRecorder

log = logging.getLogger(__name__)
T = TypeVar("T")

Message = dict[str, Any]  # {"role", "content"}: a string, or (user turns) OpenAI-format content parts
PROBE_PROMPT: list[Message] = [{"role": "user", "content": "Reply with OK."}]
CAPABILITIES = frozenset(CAPABILITY_KEYS)
# The image types every vision model we route to takes as a data URL (Claude, Gemini, OpenAI alike).
_IMAGE_DATA_URL = re.compile(r"data:image/(jpeg|png|webp|gif);base64,([A-Za-z0-9+/=]+)\Z")
_AUDIO_FORMAT = re.compile(r"[a-z0-9]{2,8}\Z")  # wav, mp3, ogg, amr, m4a, ...
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


@dataclass(frozen=True)
class Transcription:
    text: str
    provider: str
    model: str
    request_id: str
    attempts: list[Attempt] = field(default_factory=list)


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
        every = setup.deployments + setup.transcribers
        self._slots = {d.name: threading.BoundedSemaphore(cap) for d in every} if cap else {}
        self._capabilities: dict[tuple[str, str], bool] = {}
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
        """The chat deployments, in order (what status, analytics and the admin API list)."""
        return self.setup.deployments

    @property
    def probe_targets(self) -> tuple[Deployment, ...]:
        """Every deployment a probe can bring back: the chat ones and the speech-to-text ones."""
        return self.setup.deployments + self.setup.transcribers

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
        needs: frozenset[str] | set[str] = frozenset(),
    ) -> Completion:
        """Ask providers in order until one gives a usable reply; raise ``AllProvidersFailed`` if none does.

        ``validate`` parses the reply; if it raises, the reply counts as bad output and the next
        provider is asked. ``needs`` (``vision``, ``audio``; the messages' media parts add theirs) keeps the
        request to deployments that take it; the others are skipped as ``cannot take <need>``.
        """
        needs = frozenset(needs) | _check_messages(messages)
        if not needs <= CAPABILITIES:
            raise ValueError(f"needs: unknown capability {sorted(needs - CAPABILITIES)[0]!r}")
        self._routing()  # before the deadline starts: importing litellm must not eat into it
        request_id = request_id or uuid.uuid4().hex
        optional: dict[str, Any] = {}
        if max_tokens is not None:
            optional["max_tokens"] = max_tokens
        if temperature is not None:
            optional["temperature"] = temperature
        skipped: dict[str, str] = {}
        capable = []
        for depth, deployment in enumerate(self.deployments):
            lacking = sorted(need for need in needs if not self.capable(deployment, need))
            if lacking:
                skipped[deployment.name] = f"cannot take {' or '.join(lacking)}"
            else:
                capable.append((depth, deployment))

        def chat(deployment: Deployment, depth: int, retry_index: int, timeout: float) -> tuple[Attempt, Any]:
            attempt, text = self._attempt(
                deployment,
                _chat_call(deployment.name, messages, optional),
                _reply_text,
                purpose,
                request_id,
                depth,
                retry_index,
                timeout=timeout,
            )
            parsed = None
            if attempt.outcome == "success" and validate is not None:
                attempt, parsed = self._validated(deployment, attempt, text, validate)
            return attempt, (text, parsed)

        attempts: list[Attempt] = []
        answered = self._first_answer(capable, chat, attempts, skipped, deadline_s)
        if answered is not None:
            deployment, (text, parsed) = answered
            return Completion(text, deployment.name, deployment.model, request_id, attempts, parsed)
        if needs and not capable:
            raise AllProvidersFailed(attempts, skipped, f": no deployment takes {' and '.join(sorted(needs))}")
        raise AllProvidersFailed(attempts, skipped)

    def seconds_until_usable(self) -> float | None:
        """How long until a chat deployment may be asked again: 0 when one is usable now, else until the earliest
        cooldown ends (when its probe is due); None when every one is benched or disabled (a probe or an admin
        brings those back, at no known time)."""
        now = self.health.clock()
        waits = []
        for deployment in self.deployments:
            record = self.health.get(deployment.name)
            if record.state in (ProviderState.HEALTHY, ProviderState.DEGRADED):
                return 0.0
            if record.state == ProviderState.COOLING_DOWN:
                waits.append(max(0.0, (record.until or now) - now))
        return min(waits) if waits else None

    def capable(self, deployment: Deployment, need: str) -> bool:
        """Whether ``deployment`` takes ``need`` (vision, audio): its model_info override, else LiteLLM's model map."""
        if need in deployment.capability_overrides:
            return deployment.capability_overrides[need]
        key = (deployment.name, need)
        if key not in self._capabilities:
            import litellm

            check = litellm.supports_vision if need == "vision" else litellm.supports_audio_input
            try:
                self._capabilities[key] = bool(check(model=deployment.model))
            except Exception:  # a model LiteLLM's map does not know takes text only, as far as we can tell
                self._capabilities[key] = False
        return self._capabilities[key]

    def transcribe(
        self,
        audio: bytes,
        filename: str,
        content_type: str,
        *,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> Transcription:
        """Speech to text through LiteLLM's transcription API, on the ``audio_transcription`` deployments in order,
        under the same health, retry and recording rules as ``complete`` (purpose ``transcription``)."""
        if not audio:
            raise ValueError("audio must not be empty")
        self._routing()  # imports litellm and installs the recorder
        request_id = request_id or uuid.uuid4().hex
        if not self.setup.transcribers:
            raise AllProvidersFailed([], {}, ": no audio_transcription deployment is configured")

        def transcription(deployment: Deployment, depth: int, retry_index: int, timeout: float) -> tuple[Attempt, str]:
            return self._transcription_attempt(
                deployment, (filename, audio, content_type), request_id, depth, retry_index, timeout=timeout
            )

        attempts: list[Attempt] = []
        skipped: dict[str, str] = {}
        answered = self._first_answer(list(enumerate(self.setup.transcribers)), transcription, attempts, skipped,
                                      deadline_s)  # fmt: skip
        if answered is None:
            raise AllProvidersFailed(attempts, skipped)
        deployment, text = answered
        return Transcription(text, deployment.name, deployment.model, request_id, attempts)

    def _first_answer(
        self,
        deployments: list[tuple[int, Deployment]],
        try_one: Callable[[Deployment, int, int, float], tuple[Attempt, T]],
        attempts: list[Attempt],
        skipped: dict[str, str],
        deadline_s: float | None,
    ) -> tuple[Deployment, T] | None:
        """Try ``deployments`` (with their fallback depth) in order under the shared health, within one deadline,
        until ``try_one`` lands a success; every attempt is appended to ``attempts``, every provider passed over
        to ``skipped`` with why. None when no provider answered; ``AllProvidersFailed`` once the deadline is spent.
        """
        deadline = time.monotonic() + (deadline_s or self.setup.reliability.request_deadline_s)
        for depth, deployment in deployments:
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
                    attempt, result = try_one(
                        deployment, depth, retry_index, min(deployment.timeout_s, deadline - time.monotonic())
                    )
                finally:
                    if slot is not None:
                        slot.release()
                attempts.append(attempt)
                if attempt.outcome == "success":
                    return deployment, result
                if not POLICIES[ErrorKind(attempt.error_kind)].quick_retry:
                    break
        return None

    def probe(self, provider: str, actor: str = "probe") -> Attempt:
        """Call ``provider`` now with a tiny prompt (a speech-to-text one, a tenth of a second of silence),
        whatever its state; success brings it back."""
        deployment = self.setup.deployment(provider)
        timeout = min(deployment.timeout_s, self.setup.reliability.request_deadline_s)
        if deployment.mode != "chat":
            attempt, _ = self._transcription_attempt(
                deployment, ("probe.wav", PROBE_AUDIO, "audio/wav"), uuid.uuid4().hex, 0, 0,
                timeout=timeout, actor=actor, purpose="selftest",
            )  # fmt: skip
            return attempt
        attempt, _ = self._attempt(
            deployment,
            _chat_call(deployment.name, PROBE_PROMPT, {"max_tokens": PROBE_MAX_TOKENS}),
            _reply_text,
            "selftest",
            uuid.uuid4().hex,
            0,
            0,
            timeout=timeout,
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
        call: Callable[[Router, dict[str, str], float], Any],
        text_of: Callable[[Any], str],
        purpose: str,
        request_id: str,
        depth: int,
        retry_index: int,
        *,
        timeout: float,
        actor: str = "traffic",
    ) -> tuple[Attempt, str]:
        """One LiteLLM call (``call(router, metadata, timeout)``), returned once the recorder has landed it: its
        row and the text ``text_of`` reads off the response ("" unless it succeeded).

        LiteLLM reports every call it makes with our metadata to the recorder: a failure before raising, a success
        later on its logging pool, which may drop it; only then does the service land the response it holds."""
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
            seen=self.health.get(deployment.name),  # a cooldown begun meanwhile is not this call's to lengthen
        )
        started = time.time()
        try:
            response = call(router, {recorder.METADATA_KEY: attempt_id, "request_id": request_id, "purpose": purpose},
                            timeout)  # fmt: skip
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
        return attempt, text_of(response) if attempt.outcome == "success" else ""

    def _transcription_attempt(
        self,
        deployment: Deployment,
        file: tuple[str, bytes, str],
        request_id: str,
        depth: int,
        retry_index: int,
        *,
        timeout: float,
        actor: str = "traffic",
        purpose: str = "transcription",
    ) -> tuple[Attempt, str]:
        """One call of ``litellm.transcription``: LiteLLM 1.110's Router offers only an async one, and an event
        loop per call in worker threads trips its logging worker. It lands like a chat attempt."""
        import litellm

        params = {k: v for k, v in deployment.litellm_entry["litellm_params"].items() if k not in ("order", "timeout")}
        return self._attempt(
            deployment,
            lambda router, metadata, timeout: litellm.transcription(
                file=file,
                timeout=timeout,
                metadata=metadata,
                **params,
                max_retries=0,  # the OpenAI SDK would retry 429/5xx on its own; our policy decides
            ),  # fmt: skip
            lambda response: (response.text or "").strip(),
            purpose,
            request_id,
            depth,
            retry_index,
            timeout=timeout,
            actor=actor,
        )

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


def _chat_call(name: str, messages: list[Message], optional: dict[str, Any]) -> Callable[..., Any]:
    """One chat completion through the Router, LiteLLM's own retries off (our policy decides)."""
    return lambda router, metadata, timeout: router.completion(
        model=name, messages=messages, timeout=timeout, num_retries=0, metadata=metadata, **optional
    )


def _reply_text(response: Any) -> str:
    return response.choices[0].message.content


def _check_messages(messages: list[Message]) -> frozenset[str]:
    """Refuse a malformed conversation here: sent on, every provider would reject it in turn. Returns what its
    media parts need (vision for ``image_url``, audio for ``input_audio``)."""
    if not messages:
        raise ValueError("messages must not be empty")
    needs: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{index}]: role must be system, user or assistant")
        content = message.get("content")
        if isinstance(content, list) and message["role"] == "user":
            needs |= _check_parts(content, f"messages[{index}].content")
        elif not isinstance(content, str) or not content.strip():
            raise ValueError(f"messages[{index}]: content must be a non-empty string (or, for a user, content parts)")
    return frozenset(needs)


def _check_parts(parts: list[Any], where: str) -> set[str]:
    """OpenAI-format content parts: ``text``, ``image_url`` with a base64 data URL of an image, ``input_audio``
    with base64 data and a format. Anything else is refused before any provider is asked."""
    if not parts:
        raise ValueError(f"{where}: must not be an empty list")
    needs: set[str] = set()
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str) or not part["text"].strip():
                raise ValueError(f"{at}.text: must be a non-empty string")
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            found = _IMAGE_DATA_URL.match(url) if isinstance(url, str) else None
            if found is None or not _is_base64(found.group(2)):
                raise ValueError(f"{at}.image_url.url: must be a base64 data URL of a JPEG, PNG, WebP or GIF image")
            needs.add("vision")
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            audio_format = audio.get("format") if isinstance(audio, dict) else None
            if not isinstance(data, str) or not data or not _is_base64(data):
                raise ValueError(f"{at}.input_audio.data: must be non-empty base64")
            if not isinstance(audio_format, str) or not _AUDIO_FORMAT.match(audio_format):
                raise ValueError(f"{at}.input_audio.format: must name the audio format (wav, mp3, ogg, ...)")
            needs.add("audio")
        else:
            raise ValueError(f"{at}.type: must be text, image_url or input_audio, got {kind!r}")
    return needs


def _is_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _silence_wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of silence: the smallest honest thing to ask a speech-to-text model in a probe."""
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


PROBE_AUDIO = _silence_wav()


def _router_for(setup: RouterSetup) -> tuple[Router, AttemptRecorder]:
    """A LiteLLM Router for ``setup``, with this process's recorder registered. The first call imports litellm."""
    from litellm import Router

    from bot.llm.attempt_recorder import installed_recorder

    recorder = installed_recorder()
    try:
        return Router(**setup.router_kwargs()), recorder
    except Exception as exc:  # LiteLLM rejects unknown settings with TypeError/ValueError
        raise RouterConfigError(f"{setup.source}: router_settings: {redact_secrets(str(exc))}") from exc
