"""``python -m bot serve`` (dev server with its scheduler, one process) and ``python -m bot clock`` (the
scheduler alone, for gunicorn deployments: Procfile ``clock: python -m bot clock``).

Exactly one scheduler per deployment: gunicorn workers start none, so with gunicorn run one clock
process; ``serve`` is the single-process mode and runs its own. Jobs also claim each run in SQLite,
so a second clock started by mistake runs nothing twice. The clock builds the shared services but no
Flask app, so it starts no web-side worker threads: it only runs jobs.

Other areas plug their periodic jobs and the admin WhatsApp sender in ``scheduler_extras`` below.
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from apscheduler.schedulers.base import BaseScheduler

from bot.admin.job_runs import JobRuns
from bot.admin.scheduler import ScheduledJob, admin_jobs, build_scheduler
from bot.admin.settings import AdminSettings
from bot.cli.services import CONFIG_ERRORS, configuration_error, open_services
from bot.inbound import release_expired_leases
from bot.web import AppServices, create_app, services_of
from bot.whatsapp.runtime import admin_whatsapp_sender

log = logging.getLogger(__name__)

RESUME_INBOUND_INTERVAL_S = 60.0


@dataclass
class SchedulerExtras:
    jobs: list[ScheduledJob] = field(default_factory=list)
    send_admin_whatsapp: Callable[[str], None] | None = None


def scheduler_extras(services: AppServices) -> SchedulerExtras:
    """What other areas add to the scheduler: the WhatsApp area's stuck-message recovery, and the
    Twilio sender through which alerts reach ``ADMIN_WHATSAPP_NUMBER``."""
    resume_inbound = ScheduledJob(
        "resume_inbound", lambda: release_expired_leases(services.store), RESUME_INBOUND_INTERVAL_S
    )
    admin_number = AdminSettings.from_env(services.env).admin_whatsapp_number
    return SchedulerExtras([resume_inbound], admin_whatsapp_sender(services.env, admin_number))


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the web app and its scheduler in one process (development, small installs)",
        description="Serve the app with Flask's threaded server and run the scheduler (self-tests, alerts, "
        "retention) in the same process. For gunicorn, run `python -m bot clock` beside it instead.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--no-scheduler", action="store_true", help="do not start the in-process scheduler")
    serve.set_defaults(run=run_serve)

    clock = commands.add_parser(
        "clock",
        help="run the scheduler alone (one per deployment, beside gunicorn)",
        description="Blocking scheduler: self-tests of benched/cooling/idle providers every "
        "SELFTEST_INTERVAL_MINUTES, alerts every ALERT_CHECK_SECONDS, retention (RETENTION_DAYS). "
        "Stops on SIGTERM or Ctrl-C.",
    )
    clock.set_defaults(run=run_clock)


def scheduler_for(services: AppServices, *, blocking: bool) -> BaseScheduler:
    """The scheduler of this deployment, with the admin jobs and the extras of other areas."""
    settings = AdminSettings.from_env(services.env)
    extras = scheduler_extras(services)
    jobs = [*admin_jobs(services.llm.service, settings, extras.send_admin_whatsapp), *extras.jobs]
    return build_scheduler(jobs, JobRuns(services.store), blocking=blocking)


def run_serve(args: argparse.Namespace) -> int:
    logging.getLogger("bot").setLevel(logging.INFO)
    try:
        app = create_app()
        scheduler = None if args.no_scheduler else scheduler_for(services_of(app), blocking=False)
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    if scheduler is not None:
        scheduler.start()
    try:
        app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        services_of(app).llm.close()
    return 0


def run_clock(args: argparse.Namespace) -> int:
    logging.getLogger("bot").setLevel(logging.INFO)
    try:
        services = open_services()  # no Flask app: a clock starts no web-side worker threads
        scheduler = scheduler_for(services, blocking=True)
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)

    def stop(signum: int, frame: FrameType | None) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("clock: scheduler started with jobs %s", ", ".join(job.id for job in scheduler.get_jobs()))
    try:
        scheduler.start()
    finally:
        services.llm.close()
    return 0
