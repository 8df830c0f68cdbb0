"""``python -m bot serve`` (dev server with its scheduler, one process) and ``python -m bot clock`` (the
scheduler alone, for gunicorn deployments: Procfile ``clock: python -m bot clock``).

Exactly one scheduler per deployment: gunicorn workers start none, so with gunicorn run one clock
process; ``serve`` is the single-process mode and runs its own. Jobs also claim each run in SQLite,
so a second clock started by mistake runs nothing twice. The clock opens the shared services but no
Flask app (it does not even import Flask), so it starts no web-side worker threads: it only runs jobs.
The jobs themselves are assembled by ``bot.services.Services.scheduled_jobs``.
"""

from __future__ import annotations

import argparse
import logging
import signal
from typing import TYPE_CHECKING

from bot.cli.exit_status import configuration_error

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.services import Services

log = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


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


def scheduler_for(services: Services, *, blocking: bool) -> BaseScheduler:
    """The deployment's scheduler over the services' jobs; not started."""
    from bot.admin.job_runs import JobRuns
    from bot.admin.scheduler import build_scheduler

    return build_scheduler(services.scheduled_jobs(), JobRuns(services.store), blocking=blocking)


def run_serve(args: argparse.Namespace) -> int:
    from bot.services import CONFIG_ERRORS
    from bot.web import create_app, services_of

    logging.getLogger("bot").setLevel(logging.INFO)
    try:
        app = create_app()
        services = services_of(app)
        scheduler = None if args.no_scheduler else scheduler_for(services, blocking=False)
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    if scheduler is not None:
        scheduler.start()
    try:
        app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        services.close()
    return 0


def run_clock(args: argparse.Namespace) -> int:
    from bot.services import CONFIG_ERRORS, open_services

    logging.getLogger("bot").setLevel(logging.INFO)
    # SIGTERM and Ctrl-C are taken by sigwait in this thread, not by a handler: the kernel may hand a signal to
    # any thread, and a Python handler then waits until the main thread wakes, which a blocking scheduler's
    # loop does only at its next job (in a test, a SIGTERM sent while jobs ran was unanswered 15 s later). Blocked
    # before any thread starts, so that every thread inherits the mask and the signal waits for sigwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        try:
            services = open_services()
            scheduler = scheduler_for(services, blocking=False)
        except CONFIG_ERRORS as exc:
            return configuration_error(exc)
        log.info("clock: scheduler started with jobs %s", ", ".join(job.id for job in scheduler.get_jobs()))
        try:
            scheduler.start()
            received = signal.sigwait(STOP_SIGNALS)
            log.info("clock: %s received, stopping", signal.Signals(received).name)
            scheduler.shutdown(wait=False)
        finally:
            services.close()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return 0
