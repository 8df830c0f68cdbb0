"""The process's ``Services`` (``bot.services``) as an app holds them: ``create_app`` attaches them once and
every area reads them from the app serving the request, so areas share objects without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from bot.services import Services

EXTENSION_KEY = "djobea"


def attach_services(app: Flask, services: Services) -> None:
    app.extensions[EXTENSION_KEY] = services


def services_of(app: Flask) -> Services:
    return app.extensions[EXTENSION_KEY]


def current_services() -> Services:
    """The services of the app handling the current request."""
    return services_of(current_app)
