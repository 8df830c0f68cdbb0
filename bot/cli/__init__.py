"""The ``python -m bot`` command line: one module per command group, each adding its subcommands.

``python -m bot --help`` lists them; ``python -m bot COMMAND --help`` says everything about one.
A command module imports only what its parser needs at the top; what a command runs on (``bot.services``,
the LLM layer, Flask for ``serve``) is imported by its run function, so ``--help`` answers at once and a
command that serves no HTTP never imports Flask.
"""

from __future__ import annotations

import argparse

from bot.cli import admin, artisans, ask, backup, chat, serve, worker

COMMAND_MODULES = (ask, chat, worker, serve, admin, artisans, backup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Djobea AI assistant backend.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    args = parser.parse_args(argv)
    from bot.cli.exit_status import configuration_error
    from bot.services import CONFIG_ERRORS, prepare_process

    try:
        prepare_process()  # .env, then logging (LOG_LEVEL, LOG_FORMAT), before any command parses its settings
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    return int(args.run(args))
