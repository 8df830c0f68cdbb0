"""The ``python -m bot`` command line. ``python -m bot --help`` lists the commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from bot.llm import AllProvidersFailed, LLMError
from bot.llm.factory import open_llm_runtime
from bot.settings import Settings
from bot.store import Store

EXIT_CONFIG = 2
EXIT_NO_PROVIDER = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Djobea AI assistant backend.")
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser(
        "ask",
        help="send one message through the LLM service and print the reply",
        description="Send one message to the providers in order (sandbox emulator when no key is set). "
        "Uses DATABASE_PATH (default instance/bot.db), so provider health carries over between runs. "
        f"Exit status {EXIT_NO_PROVIDER} when no provider answered, {EXIT_CONFIG} on a configuration error.",
    )
    ask.add_argument("message", help="the customer's message")
    ask.add_argument("--json", action="store_true", help="print reply, provider, model and attempts as JSON")
    ask.add_argument("--purpose", default="chat", help="purpose recorded with each attempt (default: chat)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _ask(args.message, args.json, args.purpose)


def _ask(message: str, as_json: bool, purpose: str) -> int:
    settings = Settings.from_env()
    try:
        store = Store(settings.database_path)
        runtime = open_llm_runtime(store, settings.router_config_path, sandbox_url=settings.sandbox_url)
    except LLMError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        completion = runtime.service.complete([{"role": "user", "content": message}], purpose=purpose)
    except AllProvidersFailed as exc:
        if as_json:
            attempts = [a.as_dict() for a in exc.attempts]
            print(json.dumps({"error": str(exc), "attempts": attempts, "skipped": exc.skipped}))
        else:
            print(f"no provider answered: {exc}", file=sys.stderr)
        return EXIT_NO_PROVIDER
    finally:
        runtime.close()
    if as_json:
        attempts = [
            {k: v for k, v in a.as_dict().items() if k in ("provider", "outcome", "error_kind", "latency_ms")}
            for a in completion.attempts
        ]
        body = {"reply": completion.text, "provider": completion.provider, "model": completion.model}
        print(json.dumps({**body, "attempts": attempts}, ensure_ascii=False))
    else:
        print(completion.text)
        print(f"-- {completion.provider} ({completion.model})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
