"""Routes of this area (placeholder: none yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from bot.web import AppServices


def init_app(app: Flask, services: AppServices) -> None:
    """Register this area's blueprint and start what it needs."""
