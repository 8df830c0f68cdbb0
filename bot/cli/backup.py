"""``python -m bot backup PATH``: a consistent copy of the SQLite database, safe to take while everything serves.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the pages of one consistent snapshot while web
workers and the clock keep writing (WAL mode: readers never block writers). The copy is written beside PATH under a
temporary name, checked (``PRAGMA integrity_check``), switched to a single-file journal mode, and only then renamed
to PATH, so an interrupted backup never leaves a half-written file under the real name. An existing PATH is kept
unless ``--force``; a PATH that cannot be written is a clear message and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from bot.cli.exit_status import EXIT_CONFIG, configuration_error


class BackupRefused(Exception):
    """PATH cannot take the backup (exists without --force, is a directory, its folder is missing, is the database
    itself); the command prints the reason and exits 2 before anything is written."""


def register(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database to PATH while the bot keeps serving",
        description="Online backup of DATABASE_PATH to PATH (SQLite's backup API: one consistent snapshot, safe "
        "while web workers and the clock write). PATH must not exist unless --force. Exit 2 when PATH cannot be "
        "written. Restore: stop every process, then copy the file to DATABASE_PATH.",
    )
    backup.add_argument("path", metavar="PATH", type=Path, help="file to write, e.g. /backups/bot-2026-01-31.db")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    backup.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.services import CONFIG_ERRORS, open_services

    try:
        services = open_services()
    except CONFIG_ERRORS as exc:
        return configuration_error(exc)
    try:
        database = services.settings.database_path
        check_target(args.path, database, force=args.force)
        size = write_backup(services.store.db.conn, args.path, force=args.force)
    except BackupRefused as exc:
        print(f"backup refused: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, sqlite3.Error) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        services.close()
    print(f"backed up {database} to {args.path} ({size} bytes)")
    return 0


def check_target(target: Path, database: Path, *, force: bool) -> None:
    if target.is_dir():
        raise BackupRefused(f"{target} is a directory; name the file to write")
    if not target.parent.is_dir():
        raise BackupRefused(f"{target.parent} does not exist")
    if target.exists() and target.resolve() == database.resolve():
        raise BackupRefused(f"{target} is the database itself")
    if target.exists() and not force:
        raise BackupRefused(f"{target} exists; pass --force to replace it")
    if not os.access(target.parent, os.W_OK):
        raise BackupRefused(f"{target.parent} is not writable")


def write_backup(source: sqlite3.Connection, target: Path, *, force: bool) -> int:
    """Copy ``source`` into ``target`` through a temporary file beside it; returns the size of the copy."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            verdict = copy.execute("pragma integrity_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"the copy failed its integrity check: {verdict}")
            copy.execute("pragma journal_mode = delete")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
        if force:
            os.replace(partial, target)
        else:
            os.link(partial, target)  # fails if PATH appeared meanwhile: never overwrite without --force
            partial.unlink()
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size
