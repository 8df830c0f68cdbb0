"""``python -m bot serve`` (gunicorn with one worker, which runs the scheduler) and ``python -m bot clock`` (the
scheduler alone).

Exactly one scheduler acts per deployment: gunicorn workers start none; the Procfile's ``worker`` line runs it
(``python -m bot worker --with-scheduler``), ``serve`` runs it in its single gunicorn worker, and ``clock`` runs
it alone for a layout that wants it in a process of its own. Jobs also claim each run in SQLite, so a second
scheduler started by mistake runs nothing twice. The clock opens the shared services but no Flask app (it does not
even import Flask), so it starts no web-side worker threads: it only runs jobs. The jobs themselves are assembled
by ``bot.services.Services.scheduled_jobs``."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import TYPE_CHECKING, Any

from bot.cli.exit_status import configuration_error

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.services import Services

log = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the web app and its scheduler in one deployment (small installs)",
        description="Serve the app with gunicorn (one worker process, --threads threads; the same server, logging "
        "and access log as the Procfile's web line) and run the scheduler (self-tests, alerts, retention) in that "
        "worker. For several gunicorn workers, run the Procfile: its worker line runs the scheduler instead.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--threads", type=int, default=4, help="request threads (default 4)")
    serve.add_argument("--no-scheduler", action="store_true", help="do not start the in-process scheduler")
    serve.set_defaults(run=run_serve)

    clock = commands.add_parser(
        "clock",
        help="run the scheduler alone (instead of `worker --with-scheduler`)",
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
    from bot.gunicorn_logs import ACCESS_LOG_FORMAT, GunicornLogger
    from bot.services import CONFIG_ERRORS, Services

    try:  # checked here, before gunicorn starts, so a bad value is one line and exit 2, not a worker boot failure
        services = Services.from_env()
        _ = services.limit_settings, services.whatsapp_settings, services.dispatch_settings, services.media_settings
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": 1,  # one process: its scheduler is the deployment's only one
        "threads": args.threads,
        "timeout": 60,
        "logger_class": GunicornLogger,
        "loglevel": services.env.get("LOG_LEVEL", "info").lower(),
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
    }
    return OneWorkerServer(options, scheduler=not args.no_scheduler).serve()


def run_clock(args: argparse.Namespace) -> int:
    from bot.services import CONFIG_ERRORS, open_services

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


class OneWorkerServer:
    """Gunicorn run from here (``gunicorn.app.base.BaseApplication``): this process is the master, the app is built
    in its one worker, and so is the scheduler (``post_worker_init``), never in the master, which forks. The worker
    stops its scheduler and services when it exits (``worker_exit``); gunicorn takes SIGTERM and SIGINT."""

    def __init__(self, options: dict[str, Any], *, scheduler: bool) -> None:
        self.options = options
        self.scheduler = scheduler

    def serve(self) -> int:
        from gunicorn.app.base import BaseApplication

        outer = self

        class Application(BaseApplication):
            def load_config(self) -> None:
                for key, value in outer.options.items():
                    self.cfg.set(key, value)
                self.cfg.set("post_worker_init", outer.post_worker_init)
                self.cfg.set("worker_exit", outer.worker_exit)

            def load(self) -> Any:
                from bot.web import create_app

                return create_app()

        try:
            Application().run()
        except SystemExit as exc:  # gunicorn's master ends with sys.exit
            return exc.code if isinstance(exc.code, int) else 1
        return 0

    def post_worker_init(self, worker: Any) -> None:
        from bot.web import services_of

        services = services_of(worker.wsgi)
        if self.scheduler:
            worker.djobea_scheduler = scheduler_for(services, blocking=False)
            worker.djobea_scheduler.start()
            log.info("serve: scheduler started in worker %s", worker.pid)

    def worker_exit(self, server: Any, worker: Any) -> None:
        from bot.web import services_of

        scheduler = getattr(worker, "djobea_scheduler", None)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        app = getattr(worker, "wsgi", None)
        if app is not None:
            services_of(app).close()
