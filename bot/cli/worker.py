"""``python -m bot worker``: a process that only answers stored WhatsApp messages (no web server).

Run it beside gunicorn (web processes may then set WHATSAPP_WORKER_THREADS=0) or instead of their worker
threads; any number of them may run on one database, since messages are claimed with leases. Started
after a crash or ``kill -9``, it picks up what was pending once the dead holder's lease has expired.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from bot.llm import LLMError
from bot.llm.factory import open_llm_runtime
from bot.settings import Settings
from bot.store import Store
from bot.whatsapp.runtime import build_whatsapp_runtime
from bot.whatsapp.settings import WhatsAppSettingsError

EXIT_CONFIG = 2


def register(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker",
        help="answer stored WhatsApp messages (background worker process)",
        description="Claim stored WhatsApp messages with leases in DATABASE_PATH and answer each once, until "
        "SIGTERM or SIGINT. Settings come from the environment (see README: WhatsApp).",
    )
    worker.add_argument("--threads", type=int, default=None, help="worker threads (default WHATSAPP_WORKER_THREADS)")
    worker.add_argument("--drain", action="store_true", help="answer what is due now, then exit")
    worker.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        store = Store(settings.database_path)
        llm = open_llm_runtime(store, settings.router_config_path, sandbox_url=settings.sandbox_url)
        runtime = build_whatsapp_runtime(store, llm.service, os.environ, sandbox=llm.sandbox)
    except (LLMError, WhatsAppSettingsError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.drain:
            taken = runtime.worker.drain(timeout_s=float("inf"))
            print(f"answered {taken} message(s)", file=sys.stderr)
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        threads = runtime.settings.worker_threads if args.threads is None else args.threads
        runtime.start_workers(max(1, threads))
        print(
            f"worker running with {max(1, threads)} thread(s) on {settings.database_path}", file=sys.stderr, flush=True
        )
        stop.wait()
        runtime.stop_workers()
        return 0
    finally:
        llm.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point until ``worker`` is registered in ``bot.cli``: ``python -m bot.cli.worker``."""
    parser = argparse.ArgumentParser(prog="python -m bot.cli.worker")
    commands = parser.add_subparsers(dest="command")
    register(commands)
    args = parser.parse_args(["worker", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
