"""The Flask application factory: one blueprint per area, each given the process's services.

``create_app(test_config)`` does all the work (nothing happens at import time): it takes the process's
``Services`` from the composition root (``bot.services``: settings read from the environment, overridden
by ``test_config``), checks the settings of every area before anything opens, installs the limits of
the routes that call models (``bot.web.limits``; ProxyFix for TRUSTED_PROXY_HOPS), then lets each area
register itself with ``init_app(app, services)``. Areas never import each other: what they share, they
take from the services (``bot.web.app_services``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.services import Services
from bot.web import (
    admin_api,
    chat_api,
    dashboard,
    dispatch_api,
    http_metrics,
    limits,
    metrics,
    request_ids,
    suggestions_api,
    webhooks,
)
from bot.web.app_services import attach_services, services_of
from bot.web.errors import json_http_error

# Each area module exposes ``init_app(app, services)``; the order is the order of registration.
AREAS = (webhooks, chat_api, suggestions_api, admin_api, dispatch_api, dashboard, metrics)
MAX_REQUEST_BYTES = 256 * 1024  # a WhatsApp form post is a few KB; anything larger is refused with 413
# On every response: no MIME sniffing of our JSON/TwiML, and no URL (tokens in queries) leaked to other sites.
STORE_RETRY_AFTER_S = 30  # a full or read-only disk needs an operator: not seconds
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# test_config keys that override the environment variable of the same name.
SETTING_OVERRIDES = ("DATABASE_PATH", "ROUTER_CONFIG", "SANDBOX_EMULATOR_URL")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` may set DATABASE_PATH, ROUTER_CONFIG, SANDBOX_EMULATOR_URL,
    PROVIDER_ENV (a mapping used instead of os.environ for every setting and key), WHATSAPP_CLOCK
    (the clock of the WhatsApp area, the chat sessions and the rate-limit windows) and WHATSAPP_SLEEP
    (the WhatsApp sender's sleep between retries)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config.update(test_config or {})
    env: Mapping[str, str] = app.config.get("PROVIDER_ENV") or os.environ
    overrides = {k: str(app.config[k]) for k in SETTING_OVERRIDES if app.config.get(k)}
    services = Services.from_env(
        {**env, **overrides} if overrides else env,
        clock=app.config.get("WHATSAPP_CLOCK", time.time),
        sleep=app.config.get("WHATSAPP_SLEEP", time.sleep),
    )
    # The web areas' own settings are checked before anything opens: a bad value stops the boot, named.
    _ = services.limit_settings, services.whatsapp_settings, services.dispatch_settings, services.media_settings
    attach_services(app, services)
    request_ids.init_app(app)  # first: every later hook and log line of the request sees its id
    limits.init_app(app, services)

    @app.get("/")
    def index() -> Any:
        llm = services.llm
        return jsonify(
            service="djobea-ai",
            sandbox=llm.sandbox_url is not None,
            providers=[d.name for d in llm.service.deployments],
        )

    app.register_error_handler(HTTPException, json_http_error)

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(sqlite3.Error)
    def store_unavailable(error: sqlite3.Error) -> Any:
        # A full, read-only or locked store is an outage to wait out, not a bug: 503 with when to try again.
        logging.getLogger(__name__).warning("answered 503: the store failed during %s (%s)", request.path, error)
        services.store.close()  # a connection opened during the outage stays read-only: start afresh
        response = jsonify(error="Service Unavailable", detail="the database cannot take this request now")
        response.status_code = 503
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_S)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Any:
        logging.getLogger(__name__).exception("unhandled error")
        return jsonify(error="Internal Server Error", detail="unexpected error; it was logged"), 500

    for area in AREAS:
        area.init_app(app, services)
    http_metrics.init_app(app)  # after the metrics area, whose registry it adds to
    return app


__all__ = ["create_app", "services_of"]
