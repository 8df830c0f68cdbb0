"""The Flask application factory: one blueprint per area, services built once per process.

``create_app(test_config)`` does all the work (nothing happens at import time): it reads settings
from the environment, overridden by ``test_config``, opens the shared SQLite store and the LLM
runtime (the sandbox emulator when no provider key is set), installs the limits of the routes that
call models (``bot.web.limits``; ProxyFix for TRUSTED_PROXY_HOPS), then lets each area register itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.llm.factory import LLMRuntime, open_llm_runtime
from bot.settings import Settings
from bot.store import Store
from bot.web import admin_api, chat_api, dashboard, metrics, suggestions_api, webhooks
from bot.web.errors import json_http_error
from bot.web.limits import EXTENSION_KEY as MODEL_GATE_KEY
from bot.web.limits import LimitSettings, ModelGate

# Each area module exposes ``init_app(app, services)``; the order is the order of registration.
AREAS = (webhooks, chat_api, suggestions_api, admin_api, dashboard, metrics)
MAX_REQUEST_BYTES = 256 * 1024  # a WhatsApp form post is a few KB; anything larger is refused with 413
# On every response: no MIME sniffing of our JSON/TwiML, and no URL (tokens in queries) leaked to other sites.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@dataclass
class AppServices:
    """What the areas share inside one process. Shared *state* is in ``store``, never here."""

    settings: Settings
    env: Mapping[str, str]
    store: Store
    llm: LLMRuntime


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` may set DATABASE_PATH, ROUTER_CONFIG, SANDBOX_EMULATOR_URL,
    PROVIDER_ENV (a mapping used instead of os.environ for every setting and key) and WHATSAPP_CLOCK
    (the clock of the WhatsApp area, the chat sessions and the rate-limit windows)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config.update(test_config or {})
    env: Mapping[str, str] = app.config.get("PROVIDER_ENV") or os.environ
    settings = Settings.from_env(
        {
            **env,
            **{
                k: str(app.config[k])
                for k in ("DATABASE_PATH", "ROUTER_CONFIG", "SANDBOX_EMULATOR_URL")
                if app.config.get(k)
            },
        }
    )
    limits = LimitSettings.from_env(env)  # checked before anything opens: a bad value stops the boot
    store = Store(settings.database_path)
    llm = open_llm_runtime(store, settings.router_config_path, env, settings.sandbox_url)
    services = AppServices(settings=settings, env=env, store=store, llm=llm)
    app.extensions["djobea"] = services
    app.extensions[MODEL_GATE_KEY] = ModelGate(store, limits, app.config.get("WHATSAPP_CLOCK", time.time))
    if limits.trusted_proxy_hops:
        # The client address is the one the nearest trusted proxy saw; nothing else of X-Forwarded-* is taken.
        hops = limits.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]

    @app.get("/")
    def index() -> Any:
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

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Any:
        logging.getLogger(__name__).exception("unhandled error")
        return jsonify(error="Internal Server Error", detail="unexpected error; it was logged"), 500

    for area in AREAS:
        area.init_app(app, services)
    return app


def services_of(app: Flask) -> AppServices:
    return app.extensions["djobea"]


__all__ = ["AppServices", "create_app", "services_of"]
