"""The ``python -m bot`` command line: one module per command group, each adding its subcommands.

``python -m bot --help`` lists them; ``python -m bot COMMAND --help`` says everything about one.
A command module imports only what its parser needs at the top; what a command runs on (``bot.services``,
the LLM layer, Flask for ``serve``) is imported by its run function, so ``--help`` answers at once and a
command that serves no HTTP never imports Flask.
"""

from __future__ import annotations

import argparse
import logging

from bot.cli import admin, ask, chat, serve, worker

COMMAND_MODULES = (ask, chat, worker, serve, admin)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Djobea AI assistant backend.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args))
