"""``python -m bot artisans import FILE.csv`` and ``python -m bot artisans list``: the artisan directory.

Both work on the shared store (DATABASE_PATH), so what they change every worker sees at once. The CSV has a
header ``name,whatsapp,trades,quartiers[,active]``; ``trades`` and ``quartiers`` cells list several values
separated by ``;`` (or ``,`` inside quotes); an empty ``quartiers`` means the whole city. An import is all or
nothing: one bad line and nothing is added, with every bad line named.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli.exit_status import configuration_error

EXIT_REFUSED = 4


def register(commands: argparse._SubParsersAction) -> None:
    artisans = commands.add_parser(
        "artisans",
        help="import or list the artisans dispatch offers requests to",
        description="The artisan directory of the shared store (DATABASE_PATH).",
    )
    actions = artisans.add_subparsers(dest="action", required=True, metavar="ACTION")
    imported = actions.add_parser(
        "import",
        help="add the artisans of a CSV file (all or nothing)",
        description="Add every artisan of FILE (header name,whatsapp,trades,quartiers[,active]; several trades or "
        "quartiers separated by ';'). One bad line and nothing is added; every bad line is printed "
        f"and the exit status is {EXIT_REFUSED}.",
    )
    imported.add_argument("file", type=Path, help="the CSV file (UTF-8)")
    imported.set_defaults(run=run_import)
    listed = actions.add_parser("list", help="print the directory", description="Print the artisans by name.")
    listed.add_argument("--active", choices=("true", "false"), help="only active (true) or paused (false) ones")
    listed.add_argument("--trade", help="only artisans of this trade")
    listed.add_argument("--json", action="store_true", help="print the same data as GET /api/artisans")
    listed.set_defaults(run=run_list)


def run_import(args: argparse.Namespace) -> int:
    from bot.dispatch import CsvImportRefused, DispatchError
    from bot.services import CONFIG_ERRORS, open_services

    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        directory = open_services().artisans
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    try:
        added = directory.import_csv(text)
    except CsvImportRefused as exc:
        print(f"nothing imported from {args.file}:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return EXIT_REFUSED
    except DispatchError as exc:
        print(f"nothing imported from {args.file}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"imported {len(added)} artisan(s) from {args.file}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from bot.dispatch import DispatchError
    from bot.services import CONFIG_ERRORS, open_services

    try:
        directory = open_services().artisans
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    active = None if args.active is None else args.active == "true"
    try:
        artisans = directory.list(active=active, trade=args.trade)
    except DispatchError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        print(json.dumps({"artisans": [a.as_dict() for a in artisans]}, ensure_ascii=False, indent=2))
        return 0
    for artisan in artisans:
        state = "active" if artisan.active else "paused"
        quartiers = ", ".join(artisan.quartiers) or "toute la ville"
        print(f"{artisan.id:>4}  {artisan.name:<24} {artisan.whatsapp:<15} {state:<7} "
              f"{', '.join(artisan.trades)} | {quartiers}")  # fmt: skip
    print(f"{len(artisans)} artisan(s)", file=sys.stderr)
    return 0
