"""``GET /metrics``: Prometheus exposition, computed at scrape time from SQLite (see
``bot.admin.prometheus_collector``), so every gunicorn worker answers the same numbers.

The registry is built per app, not the library's global one: no module-level state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from bot.admin.prometheus_collector import LLMMetricsCollector

if TYPE_CHECKING:
    from bot.web import AppServices


def init_app(app: Flask, services: AppServices) -> None:
    """Register ``/metrics`` with a registry holding only this app's collector."""
    service = services.llm.service
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LLMMetricsCollector(services.store, service.health, [d.name for d in service.deployments]))
    blueprint = Blueprint("metrics", __name__)

    @blueprint.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    app.register_blueprint(blueprint)
