"""Self-tests: which providers to probe, and probing them.

A probe is a tiny prompt (max_tokens 5, purpose ``selftest``) recorded like any call, so a passing
probe brings a benched or cooled provider back for every worker. The scheduled policy probes only
where traffic tells nothing: benched providers (no traffic reaches them), cooling ones whose cooldown
is over, and providers idle for ``IDLE_PROBE_AFTER_MINUTES``. Busy providers are never probed.

No customer request tests a cooled provider. Once its cooldown is over, it is probed by whichever comes
first: the process whose traffic notices (``LLMService`` probes it in the background), or
``run_cooldown_probes``, which the scheduler runs every ``COOLDOWN_PROBE_INTERVAL_S`` so that a provider
comes back even when no traffic notices. Both take the provider's probe lease: one probe runs at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.admin.settings import AdminSettings
from bot.llm import LLMService
from bot.llm.health import HealthRecord, ProviderState

# How often the scheduler looks for cooled providers whose cooldown is over: one read per provider when none is.
COOLDOWN_PROBE_INTERVAL_S = 5.0


@dataclass(frozen=True)
class ProbeResult:
    provider: str
    why: str  # benched | cooldown_over | idle | requested
    outcome: str
    error_kind: str | None
    latency_ms: float
    model: str
    http_status: int | None
    state_after: str

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "why": self.why,
            "outcome": self.outcome,
            "error_kind": self.error_kind,
            "latency_ms": round(self.latency_ms, 1),
            "model": self.model,
            "http_status": self.http_status,
            "state": self.state_after,
        }


def probe_reason(record: HealthRecord, last_attempt_at: float | None, idle_after_s: float, now: float) -> str | None:
    """Why the scheduled self-test should probe this provider now, or None to leave it alone."""
    if record.state == ProviderState.DISABLED:
        return None
    if record.state == ProviderState.BENCHED:
        return "benched"
    if record.state == ProviderState.COOLING_DOWN:
        return "cooldown_over" if record.probe_due_at(now) else None  # not while another process probes it
    if last_attempt_at is None or now - last_attempt_at >= idle_after_s:
        return "idle"
    return None


def due_probes(service: LLMService, settings: AdminSettings, now: float) -> dict[str, str]:
    """Providers the scheduled self-test probes now, with why."""
    due = {}
    for deployment in service.probe_targets:  # speech-to-text ones too, once benched or cooled
        rows = list(
            service.store.db.query(
                "select max(started_at) as last from llm_calls where provider = ?", [deployment.name]
            )
        )
        reason = probe_reason(service.health.get(deployment.name), rows[0]["last"], settings.idle_probe_after_s, now)
        if reason == "idle" and deployment.mode != "chat":
            continue  # a transcription deployment is probed only to bring it back, not kept warm
        if reason:
            due[deployment.name] = reason
    return due


def probe_providers(service: LLMService, reasons: dict[str, str], actor: str) -> list[ProbeResult]:
    """Probe each provider now, in parallel (each probe is bounded by the provider's timeout).

    A cooled provider is probed only under its probe lease: another process may be probing it already."""
    reasons = {p: why for p, why in reasons.items() if why != "cooldown_over" or service.health.claim_probe(p)}
    if not reasons:
        return []

    def probe(provider: str) -> ProbeResult:
        attempt = service.probe(provider, actor=actor)
        return ProbeResult(
            provider=provider,
            why=reasons[provider],
            outcome=attempt.outcome,
            error_kind=attempt.error_kind,
            latency_ms=attempt.latency_ms,
            model=attempt.model,
            http_status=attempt.http_status,
            state_after=service.health.get(provider).state.value,
        )

    with ThreadPoolExecutor(max_workers=len(reasons), thread_name_prefix="probe") as pool:
        return list(pool.map(probe, reasons))


def run_scheduled_selftest(
    service: LLMService, settings: AdminSettings, clock: Callable[[], float] = time.time
) -> list[ProbeResult]:
    """The scheduled job: probe what ``due_probes`` names."""
    return probe_providers(service, due_probes(service, settings, clock()), actor="probe:scheduled")


def run_cooldown_probes(service: LLMService, clock: Callable[[], float] = time.time) -> list[ProbeResult]:
    """The frequent job: probe only the cooled providers whose cooldown is over (nothing else, so it is cheap)."""
    now = clock()
    due = {d.name: "cooldown_over" for d in service.probe_targets if service.health.get(d.name).probe_due_at(now)}
    return probe_providers(service, due, actor="probe:scheduled")


def requested_probes(service: LLMService, providers: Iterable[str] | None) -> dict[str, str]:
    """An admin's ``test`` request: the named providers, or every one not disabled."""
    if providers is not None:
        return dict.fromkeys(providers, "requested")
    return {
        d.name: "requested" for d in service.deployments if service.health.get(d.name).state != ProviderState.DISABLED
    }
