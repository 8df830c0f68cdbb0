"""``python -m bot worker``: a process that answers stored WhatsApp messages (no web server).

The Procfile's ``worker`` line runs ``python -m bot worker --with-scheduler``: its threads answer every message the web
processes (WHATSAPP_WORKER_THREADS=0 on the web line) store and wake it for, and it runs the deployment's
scheduler, so one process holds LiteLLM instead of every gunicorn worker plus a clock (README: Capacity). Any
number of workers may run on one database, since messages are claimed with leases and every scheduled run is
claimed in SQLite. Started after a crash or ``kill -9``, it picks up what was pending once the dead holder's
lease has expired.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading

from bot.cli.exit_status import configuration_error


def register(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker",
        help="answer stored WhatsApp messages (background worker process)",
        description="Claim stored WhatsApp messages with leases in DATABASE_PATH and answer each once, until "
        "SIGTERM or SIGINT. Settings come from the environment (see README: WhatsApp).",
    )
    worker.add_argument("--threads", type=int, default=None, help="worker threads (default WHATSAPP_WORKER_THREADS)")
    worker.add_argument("--drain", action="store_true", help="answer what is due now, then exit")
    worker.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also run the scheduler's jobs (self-tests, probes, alerts, retention, dispatch); instead of a clock",
    )
    worker.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.services import CONFIG_ERRORS, open_services

    try:
        services = open_services()
        # Every setting the worker uses is checked before anything is built: a bad one is the first line printed.
        _ = services.whatsapp_settings, services.dispatch_settings, services.media_settings
        runtime = services.whatsapp
        services.llm.service.prepare()  # LiteLLM imported now, not on the first customer's message
        runtime.engine.prepare()  # and LangChain's prompts
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    try:
        if args.drain:
            taken = runtime.worker.drain(timeout_s=float("inf"))
            print(f"answered {taken} message(s)", file=sys.stderr)
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        threads = runtime.settings.worker_threads if args.threads is None else args.threads
        scheduler = None
        if args.with_scheduler:
            from bot.cli.serve import scheduler_for

            scheduler = scheduler_for(services, blocking=False)
            scheduler.start()
        # What start-up built (LiteLLM's modules and Router: some 450,000 objects) is kept out of the garbage
        # collector's reach: every full collection walked it all, holding the GIL, so every thread stopped for
        # 250-310 ms a few times a minute (P6 p99 1.06 s; 0.53 s frozen: README, Capacity).
        gc.collect()
        gc.freeze()
        runtime.start_workers(max(1, threads))
        print(
            f"worker running with {max(1, threads)} thread(s){' and the scheduler' if scheduler else ''}"
            f" on {services.settings.database_path}",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        runtime.stop_workers()
        return 0
    finally:
        services.close()
