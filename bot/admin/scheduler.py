"""The periodic jobs (self-tests, alerts, retention, plus any the other areas plug in) on APScheduler.

Exactly one scheduler acts per deployment: the one in the Procfile's worker process (``python -m bot worker
--with-scheduler``) beside gunicorn's workers, which start none; or ``python -m bot clock``, which does nothing
else; or the background scheduler inside ``python -m bot serve`` (single-process mode). Each run also claims its
job in SQLite (``bot.admin.job_runs``), so even two schedulers started by mistake never both run a job.

``admin_jobs`` are the admin side's jobs; the composition root (``bot.services.Services.scheduled_jobs``)
adds the other areas' (e.g. resuming stuck inbound messages), each a ``ScheduledJob(name, run, interval_s)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from bot.admin.alert_sinks import AlertSinks
from bot.admin.alerts import AlertDispatcher
from bot.admin.job_runs import JobRuns
from bot.admin.retention import delete_old_rows
from bot.admin.selftest import COOLDOWN_PROBE_INTERVAL_S, run_cooldown_probes, run_scheduled_selftest
from bot.admin.settings import AdminSettings
from bot.llm import LLMService

log = logging.getLogger(__name__)

CLAIM_GAP = 0.8  # a job runs at most once per 0.8 interval, whichever scheduler fires first
RETENTION_INTERVAL_S = 6 * 3600.0


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    run: Callable[[], object]
    interval_s: float
    start_now: bool = True  # first run when the scheduler starts, not one interval later


def alert_dispatcher(
    service: LLMService,
    settings: AdminSettings,
    send_admin_whatsapp: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> AlertDispatcher:
    return AlertDispatcher(
        service.store,
        [d.name for d in service.deployments],
        {d.name: d.family for d in service.deployments},
        AlertSinks(settings, send_admin_whatsapp),
        clock,
    )


def admin_jobs(
    service: LLMService,
    settings: AdminSettings,
    send_admin_whatsapp: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[ScheduledJob]:
    """The admin side's jobs: self-tests (then alerts at once), alerts, retention."""
    alerts = alert_dispatcher(service, settings, send_admin_whatsapp, clock)

    def selftest() -> None:
        results = run_scheduled_selftest(service, settings, clock)
        if results:
            log.info("self-test: %s", ", ".join(f"{r.provider} ({r.why}) {r.outcome}" for r in results))
        alerts.run_once()

    return [
        ScheduledJob("selftest", selftest, settings.selftest_interval_s),
        # Backstop of the background probe a request starts: brings a cooled provider back with no traffic at all.
        ScheduledJob("cooldown_probes", lambda: run_cooldown_probes(service, clock), COOLDOWN_PROBE_INTERVAL_S),
        ScheduledJob("alerts", alerts.run_once, settings.alert_check_interval_s),
        ScheduledJob(
            "retention", lambda: delete_old_rows(service.store, settings.retention_days, clock), RETENTION_INTERVAL_S
        ),
    ]


def run_claimed(job: ScheduledJob, runs: JobRuns) -> bool:
    """Run ``job`` if this scheduler wins its claim; errors are logged and recorded, never raised."""
    if not runs.claim(job.name, job.interval_s * CLAIM_GAP):
        log.info("job %s: skipped, already run by another scheduler in this interval", job.name)
        return False
    log.info("job %s: run claimed by %s", job.name, runs.holder)
    try:
        job.run()
    except Exception as exc:  # a failing job must not stop the scheduler
        log.exception("job %s failed", job.name)
        runs.finish(job.name, exc)
    else:
        runs.finish(job.name)
    return True


def build_scheduler(jobs: Sequence[ScheduledJob], runs: JobRuns, *, blocking: bool) -> BaseScheduler:
    """A scheduler running ``jobs``; not started. ``blocking`` for a process that does nothing else."""
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"scheduled job names must be unique, got {names}")
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_class(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
    )
    for job in jobs:
        extra = {"next_run_time": datetime.now(UTC)} if job.start_now else {}
        scheduler.add_job(
            run_claimed, "interval", seconds=job.interval_s, args=[job, runs], id=job.name, name=job.name, **extra
        )
    return scheduler
