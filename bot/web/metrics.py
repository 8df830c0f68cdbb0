"""``GET /metrics``: Prometheus exposition, computed at scrape time from SQLite (see
``bot.admin.prometheus_collector``), so every gunicorn worker answers the same numbers.

The registry is built per app, not the library's global one: no module-level state. It is kept in
``app.extensions[REGISTRY_KEY]`` so that an area counting something of its own (``bot.web.http_metrics``) adds
its collector there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from bot.admin.prometheus_collector import LLMMetricsCollector, MessageMetricsCollector

if TYPE_CHECKING:
    from bot.services import Services

REGISTRY_KEY = "djobea.metrics"


def init_app(app: Flask, services: Services) -> None:
    """Register ``/metrics`` with a registry holding only this app's collectors."""
    service = services.llm.service
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LLMMetricsCollector(services.store, service.health, [d.name for d in service.deployments]))
    # The WhatsApp area's clock (a test's fake one) wrote received_at, so the queue's age is measured by it.
    spool = services.whatsapp.spool
    registry.register(MessageMetricsCollector(services.store, services.clock, spooled=spool.depth if spool else None))
    app.extensions[REGISTRY_KEY] = registry
    blueprint = Blueprint("metrics", __name__)

    @blueprint.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    app.register_blueprint(blueprint)
