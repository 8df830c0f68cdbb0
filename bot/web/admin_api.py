"""The admin JSON API under ``/api/llm``, and the OpenAPI document at ``/api/openapi.json``.

Every route but ``/api/llm/health`` needs ``Authorization: Bearer <ADMIN_API_TOKEN>`` (compared in
constant time); with no token configured they answer 403, never open. The work is done in
``bot.admin``; this module parses requests, checks them precisely (bad input is a 4xx naming the
parameter) and shapes responses. Keys are only ever shown masked.
"""

from __future__ import annotations

import hmac
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound

from bot.admin.analytics import BUCKETS, AnalyticsRangeError, TimeRange, analytics_report
from bot.admin.openapi import openapi_document
from bot.admin.selftest import probe_providers, requested_probes
from bot.admin.settings import AdminSettings
from bot.admin.status import provider_status, usable_count
from bot.llm import LLMService
from bot.redaction import mask_key, redact_secrets

if TYPE_CHECKING:
    from bot.web import AppServices

EXTENSION = "djobea.admin"
DEFAULT_ANALYTICS_WINDOW_S = 24 * 3600.0
ACTOR_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,40}$")

blueprint = Blueprint("admin_api", __name__)


def init_app(app: Flask, services: AppServices) -> None:
    """Register the admin API; it starts nothing (the scheduler runs in the clock process)."""
    app.extensions[EXTENSION] = AdminSettings.from_env(services.env)
    app.register_blueprint(blueprint)


def admin_settings() -> AdminSettings:
    return current_app.extensions[EXTENSION]


def _service() -> LLMService:
    return current_app.extensions["djobea"].llm.service


def _error(status: int, error: str, detail: str, **headers: str) -> Response:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    response.headers.update(headers)
    return response


def require_admin(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 without the right bearer token; 403 when the server has no token configured."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        token = admin_settings().admin_api_token
        if token is None:
            return _error(
                403, "Forbidden", "the admin API is disabled: ADMIN_API_TOKEN is not configured on the server"
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _error(
                401, "Unauthorized", "send Authorization: Bearer <ADMIN_API_TOKEN>", **{"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
            return _error(
                401,
                "Unauthorized",
                "the bearer token is not the admin token",
                **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return view(*args, **kwargs)

    return guarded


def _json_body(allowed: set[str]) -> dict[str, Any]:
    """The request's JSON object (empty when no body); unknown fields and non-objects are 400."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # not covered by silent=True: JSON nested thousands deep
        raise BadRequest("the body nests too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return body


def _provider_field(body: dict[str, Any]) -> str | None:
    provider = body.get("provider")
    if provider is None:
        return None
    if not isinstance(provider, str):
        raise BadRequest("provider: must be a string")
    names = [d.name for d in _service().deployments]
    if provider not in names:
        raise BadRequest(f"provider: unknown provider {provider[:40]!r}; configured: {', '.join(names)}")
    return provider


def _actor(body: dict[str, Any]) -> str:
    """Who acted, for provider_events: ``admin:<by>`` (``by`` names the person; default ``api``)."""
    by = body.get("by", "api")
    if not isinstance(by, str) or not ACTOR_PATTERN.match(by):
        raise BadRequest("by: must be 1-40 characters among letters, digits and . _ @ -")
    return f"admin:{by}"


def _time_param(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"{name}: expected Unix seconds or an ISO 8601 time, got {raw[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = parsed.timestamp()
    if not math.isfinite(value) or abs(value) > 1e11:
        raise BadRequest(f"{name}: out of range")
    return value


@blueprint.get("/api/llm/health")
def health() -> Any:
    """Public: 200 while a provider can take requests, 503 when none can. Names no provider."""
    usable, total = usable_count(_service())
    body = {"status": "ok" if usable else "unavailable", "usable_providers": usable, "providers": total}
    return jsonify(body), 200 if usable else 503


@blueprint.get("/api/llm/status")
@require_admin
def status() -> Any:
    return jsonify(provider_status(_service(), admin_settings()))


@blueprint.post("/api/llm/test")
@require_admin
def test_providers() -> Any:
    body = _json_body({"provider", "by"})
    provider = _provider_field(body)
    actor = _actor(body).replace("admin:", "probe:admin:", 1)
    service = _service()
    results = probe_providers(service, requested_probes(service, [provider] if provider else None), actor)
    return jsonify(results=[r.as_dict() for r in results])


@blueprint.get("/api/llm/analytics")
@require_admin
def analytics() -> Any:
    unknown = sorted(set(request.args) - {"since", "until", "bucket"})
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0][:40]!r}; allowed: bucket, since, until")
    until = _time_param("until", time.time())
    since = _time_param("since", until - DEFAULT_ANALYTICS_WINDOW_S)
    bucket = request.args.get("bucket", "hour")
    if bucket not in BUCKETS:
        raise BadRequest(f"bucket: must be one of {', '.join(BUCKETS)}, got {bucket[:20]!r}")
    try:
        window = TimeRange(since, until, BUCKETS[bucket])
    except AnalyticsRangeError as exc:
        raise BadRequest(str(exc)) from None
    service = _service()
    report = analytics_report(service.store, [d.name for d in service.deployments], window)
    return jsonify({**report, "bucket": bucket})


@blueprint.post("/api/llm/reset-failures")
@require_admin
def reset_failures() -> Any:
    body = _json_body({"provider", "by"})
    provider = _provider_field(body)
    actor = _actor(body)
    service = _service()
    names = [provider] if provider else [d.name for d in service.deployments]
    for name in names:
        service.health.reset(name, actor)
    return jsonify(reset=names, actor=actor, providers=_states(service, names))


@blueprint.post("/api/llm/providers/<name>/<action>")
@require_admin
def enable_or_disable(name: str, action: str) -> Any:
    if action not in ("enable", "disable"):
        raise NotFound(f"no such action {action[:20]!r}: use enable or disable")
    service = _service()
    if name not in [d.name for d in service.deployments]:
        raise NotFound(f"no configured provider {name[:40]!r}")
    actor = _actor(_json_body({"by"}))
    service.health.set_disabled(name, action == "disable", actor)
    return jsonify(actor=actor, providers=_states(service, [name]))


@blueprint.get("/api/llm/providers")
@require_admin
def providers() -> Any:
    service = _service()
    return jsonify(
        providers=[
            {
                "provider": d.name,
                "family": d.family,
                "model": d.model,
                "order": d.order,
                "timeout_s": d.timeout_s,
                "api_base": redact_secrets(d.api_base) if d.api_base else None,
                "api_key": mask_key(d.api_key),
                "state": service.health.get(d.name).state.value,
            }
            for d in service.deployments
        ],
        left_out=dict(service.setup.left_out),
        config=service.setup.source.name,
    )


@blueprint.get("/api/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


def _states(service: LLMService, names: list[str]) -> list[dict[str, Any]]:
    return [{"provider": n, "state": (r := service.health.get(n)).state.value, "reason": r.reason} for n in names]
