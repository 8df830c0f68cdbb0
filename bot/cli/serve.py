"""``python -m bot`` commands of this area (placeholder: adds none yet)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the CLI."""
