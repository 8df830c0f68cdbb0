"""``python -m bot ask``: one message through the LLM service, reply printed."""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.exit_status import EXIT_CONFIG, configuration_error

EXIT_NO_PROVIDER = 3


def register(commands: argparse._SubParsersAction) -> None:
    ask = commands.add_parser(
        "ask",
        help="send one message through the LLM service and print the reply",
        description="Send one message to the providers in order (the sandbox emulator when no key is set). "
        "Uses DATABASE_PATH (default instance/bot.db), so provider health carries over between runs. "
        f"Exit status {EXIT_NO_PROVIDER} when no provider answered, {EXIT_CONFIG} on a configuration error.",
    )
    ask.add_argument("message", help="the customer's message")
    ask.add_argument("--json", action="store_true", help="print reply, provider, model and attempts as JSON")
    ask.add_argument("--purpose", default="chat", help="purpose recorded with each attempt (default: chat)")
    ask.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.llm import AllProvidersFailed
    from bot.services import CONFIG_ERRORS, open_services

    try:
        services = open_services()
        service = services.llm.service
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    try:
        completion = service.complete([{"role": "user", "content": args.message}], purpose=args.purpose)
    except AllProvidersFailed as exc:
        if args.json:
            attempts = [a.as_dict() for a in exc.attempts]
            print(json.dumps({"error": str(exc), "attempts": attempts, "skipped": exc.skipped}))
        else:
            print(f"no provider answered: {exc}", file=sys.stderr)
        return EXIT_NO_PROVIDER
    finally:
        services.close()
    if args.json:
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
