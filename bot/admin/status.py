"""The provider status table: shared health plus what the ledger says about the last hour.

Shown by ``GET /api/llm/status``, the dashboard and ``python -m bot status``. Live facts (last success,
last failure, success rate, latency) come from ``llm_calls``; the state and its reason from
``provider_health``; when the next probe comes from the self-test job's last run in ``scheduler_runs``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from bot.admin.analytics import TimeRange, attempt_stats, probe_cost_by_day
from bot.admin.job_runs import JobRuns
from bot.admin.settings import AdminSettings
from bot.llm import LLMService
from bot.llm.error_kinds import POLICIES, ErrorKind
from bot.llm.health import HealthRecord, ProviderState

HOUR_S = 3600.0
DAY_S = 86400.0
SELFTEST_JOB = "selftest"


def provider_status(
    service: LLMService, settings: AdminSettings, clock: Callable[[], float] = time.time
) -> dict[str, object]:
    """Every configured provider's state, in priority order, and which one the next request would use."""
    now = clock()
    store = service.store
    last_hour = {
        row["provider"]: row for row in attempt_stats(store, TimeRange(now - HOUR_S, now + 1, 3600), "provider")
    }
    runs = JobRuns(store, clock).last_runs()
    selftest_run = runs.get(SELFTEST_JOB)
    next_selftest = (
        selftest_run["last_started_at"] + settings.selftest_interval_s
        if selftest_run and selftest_run["last_started_at"]
        else None
    )
    providers = []
    next_provider = None
    for deployment in service.deployments:
        record = service.health.get(deployment.name)
        usable = record.takes_traffic_at(now)
        if usable and next_provider is None:
            next_provider = deployment.name
        last_success = _last_at(service, deployment.name, "success")
        last_failure = _last_at(service, deployment.name, "failure")
        last_attempt = max((t for t in (last_success, last_failure) if t is not None), default=None)
        hour = last_hour.get(deployment.name)
        providers.append(
            {
                "provider": deployment.name,
                "model": deployment.model,
                "order": deployment.order,
                "state": record.state.value,
                "usable": usable,
                "reason": record.reason,
                "error_kind": record.error_kind,
                "advice": _advice(record),
                "since": record.since,
                "until": record.until,
                "next_probe_at": _next_probe_at(record, last_attempt, next_selftest, settings, now),
                "consecutive_failures": record.consecutive_failures,
                "last_success_at": last_success,
                "last_failure_at": last_failure,
                "last_hour": {
                    "requests": hour["requests"] if hour else 0,
                    "successes": hour["successes"] if hour else 0,
                    "failures": hour["failures"] if hour else 0,
                    "success_rate": round(hour["successes"] / hour["requests"], 4) if hour else None,
                    "latency_ms": {"p50": hour["p50"], "p95": hour["p95"]} if hour else {"p50": None, "p95": None},
                },
            }
        )
    day_start = math.floor(now / DAY_S) * DAY_S
    today = probe_cost_by_day(store, day_start, now + 1)
    return {
        "generated_at": now,
        "next_provider": next_provider,
        "usable_providers": sum(1 for p in providers if p["usable"]),
        "providers": providers,
        "left_out": dict(service.setup.left_out),
        "probes_today": today[0] if today else {"probes": 0, "tokens": 0, "cost_usd": 0.0},
        "scheduler": {
            job: {k: row[k] for k in ("last_started_at", "last_finished_at", "holder", "last_error", "runs")}
            for job, row in runs.items()
        },
    }


def usable_count(service: LLMService, clock: Callable[[], float] = time.time) -> tuple[int, int]:
    """(usable providers, configured providers): what ``/api/llm/health`` reports."""
    now = clock()
    records = [service.health.get(d.name) for d in service.deployments]
    return sum(1 for r in records if r.takes_traffic_at(now)), len(records)


def _last_at(service: LLMService, provider: str, outcome: str) -> float | None:
    # Walks the (provider, started_at) index backwards and stops at the first match.
    rows = list(
        service.store.db.query(
            "select started_at from llm_calls where provider = ? and outcome = ? order by started_at desc limit 1",
            [provider, outcome],
        )
    )
    return rows[0]["started_at"] if rows else None


def _advice(record: HealthRecord) -> str | None:
    if record.state == ProviderState.DISABLED:
        return "Disabled by an admin: enable it again from the dashboard or POST /api/llm/providers/<name>/enable."
    if record.state == ProviderState.HEALTHY or not record.error_kind:
        return None
    try:
        return POLICIES[ErrorKind(record.error_kind)].advice
    except ValueError:
        return None


def _next_probe_at(
    record: HealthRecord, last_attempt: float | None, next_run: float | None, settings: AdminSettings, now: float
) -> float | None:
    """The first self-test run that will probe this provider (see ``bot.admin.selftest.probe_reason``)."""
    if next_run is None or record.state == ProviderState.DISABLED:
        return None
    if record.state == ProviderState.BENCHED:
        earliest = now
    elif record.state == ProviderState.COOLING_DOWN:
        earliest = record.until or now
    else:
        earliest = (last_attempt or 0) + settings.idle_probe_after_s
    if earliest <= next_run:
        return next_run
    steps = math.ceil((earliest - next_run) / settings.selftest_interval_s)
    return next_run + steps * settings.selftest_interval_s
