"""``python -m bot chat``: talk to Djobea as a WhatsApp customer from the terminal.

Each line goes the whole WhatsApp way (stored in the inbound queue, taken by the worker, answered by the
conversation engine, recorded in the outbox) except the last step: replies are shown here instead of sent,
with the provider that wrote them. By default the providers are the sandbox emulator's scripted model
(no key needed, no cost) and the database is a separate sandbox file, so a terminal chat can never take
a real customer's pending message.

``--as-artisan +237...`` plays an artisan of the directory instead (import them into the same ``--db`` with
``python -m bot artisans import``): each line is an answer to dispatch offers (OUI / NON / OUI 12), taken by
the worker to dispatch like an artisan's WhatsApp message, and dispatch's reply is shown.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterator

from bot.cli.exit_status import configuration_error

DEFAULT_DB = "instance/chat-sandbox.db"
DEFAULT_PHONE = "+237600000000"
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY")
# The terminal never sends real WhatsApp messages: without these the outbox keeps replies as sandbox rows.
TWILIO_SEND_KEYS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_NUMBER")
QUIT_WORDS = ("/quit", "/exit")


def register(commands: argparse._SubParsersAction) -> None:
    chat = commands.add_parser(
        "chat",
        help="chat with Djobea as a WhatsApp customer, in the terminal",
        description="Chat as a WhatsApp customer: each line goes through the inbound queue, the worker and the "
        "conversation engine; the reply is printed with the provider that wrote it. Uses the sandbox "
        "emulator's scripted model unless --live is given. Type /quit (or Ctrl-D) to stop.",
    )
    chat.add_argument("--phone", default=DEFAULT_PHONE, help=f"the customer's number (default {DEFAULT_PHONE})")
    chat.add_argument("--name", default="Terminal", help="the customer's WhatsApp profile name")
    chat.add_argument(
        "--as-artisan",
        metavar="NUMBER",
        help="write as this artisan of the directory (answers to offers: OUI, NON, OUI 12) instead of a customer",
    )
    chat.add_argument("--db", default=DEFAULT_DB, help=f"SQLite file for this chat's history (default {DEFAULT_DB})")
    chat.add_argument(
        "--live",
        action="store_true",
        help="use the real providers of ANTHROPIC_API_KEY / GEMINI_API_KEY / OPENAI_API_KEY (costs money)",
    )
    chat.add_argument(
        "-m", "--message", action="append", help="send this message instead of reading stdin (repeatable)"
    )
    chat.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.inbound import InboundMessage
    from bot.services import CONFIG_ERRORS, open_services

    env = {k: v for k, v in os.environ.items() if k not in TWILIO_SEND_KEYS}
    if not args.live:
        env = {k: v for k, v in env.items() if k not in PROVIDER_KEYS}
    try:
        services = open_services({**env, "DATABASE_PATH": args.db})
        runtime = services.whatsapp
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    phone = args.phone if args.phone.startswith("+") else f"+{args.phone}"
    mode = "sandbox (scripted model)" if services.llm.sandbox_url else "live providers"
    if args.as_artisan:
        artisan = services.dispatch.directory.find_by_number(args.as_artisan)
        if artisan is None:
            services.close()
            print(f"{args.as_artisan} is not an artisan of the directory in {args.db}", file=sys.stderr)
            return 2
        phone, mode = artisan.whatsapp, f"artisan {artisan.name} (answers go to dispatch)"
    print(f"Djobea chat as {phone}, {mode}; history in {args.db}. /quit to stop.", file=sys.stderr)
    try:
        for line in _lines(args.message):
            message = InboundMessage(
                message_sid=f"CLI{uuid.uuid4().hex}",
                customer_id=phone,
                body=line,
                from_number=f"whatsapp:{phone}",
                profile_name=args.name,
            )
            inbound_id, _ = runtime.queue.enqueue(message)
            runtime.worker.drain(customer_id=phone)
            _show(runtime.outbox.for_inbound(inbound_id))
            services.dispatch.deliver_pending()  # offers and notices a line caused (sandbox rows: never sent)
    finally:
        services.close()
    return 0


def _lines(messages: list[str] | None) -> Iterator[str]:
    if messages:
        yield from messages
        return
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("vous> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() in QUIT_WORDS:
            return
        if line.strip():
            yield line.strip()


def _show(rows: list) -> None:
    if not rows:
        print("   (no reply yet: the message is queued and will be answered when a provider is back)")
    for row in rows:
        if row.status == "failed" and row.kind == "holding":
            continue  # superseded holding reply: never sent
        print(f"djobea> {row.body}")
        if row.kind == "holding":
            print("   [no provider answered: holding reply; the message stays pending]")
        elif row.kind.startswith("dispatch"):
            print("   [dispatch]")
        elif row.kind == "apology":
            print("   [the message could not be answered: fixed reply, the message is closed]")
        else:
            print(f"   [{row.provider}]")
