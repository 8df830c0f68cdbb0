"""The admin JSON API under ``/api/llm``, and the OpenAPI document at ``/api/openapi.json``.

Every route but ``/api/llm/health`` needs ``Authorization: Bearer <ADMIN_API_TOKEN>`` (compared in
constant time); with no token configured they answer 403, never open. The work is done in
``bot.admin``; this module reads each request through its model and answers through one
(``bot.contracts.admin``: bad input is a 4xx naming the parameter). Keys are only ever shown masked.
The OpenAPI document is generated from those models (``bot.web.contracts``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import BadRequest, NotFound

from bot.admin.analytics import BUCKETS, AnalyticsRangeError, TimeRange, analytics_report
from bot.admin.selftest import probe_providers, requested_probes
from bot.admin.settings import AdminSettings
from bot.admin.status import provider_status, usable_count
from bot.contracts import ContractViolation, contract
from bot.contracts.admin import (
    ANALYTICS,
    HEALTH,
    OPENAPI,
    PROVIDERS,
    RESET,
    STATUS,
    TEST,
    TOGGLE,
    ActorRequest,
    Analytics,
    AnalyticsQuery,
    Health,
    OpenApiDocument,
    ProbeResults,
    ProviderActionPath,
    ProviderRequest,
    Providers,
    ResetReply,
    Status,
    ToggleReply,
)
from bot.contracts.errors import ErrorBody
from bot.llm import LLMService
from bot.redaction import mask_key, redact_secrets
from bot.web.app_services import current_services
from bot.web.chat_input import optional_json_object
from bot.web.contracts import answer, document_of, parsed

if TYPE_CHECKING:
    from bot.services import Services

blueprint = Blueprint("admin_api", __name__)


def init_app(app: Flask, services: Services) -> None:
    """Register the admin API; it starts nothing (the scheduler runs in the worker process). Its settings and
    LLM service are ``services``'."""
    app.register_blueprint(blueprint)


def admin_settings() -> AdminSettings:
    return current_services().admin_settings


def _service() -> LLMService:
    return current_services().llm.service


def _configured(service: LLMService) -> dict[str, list[str]]:
    """The validation context of the admin models: the provider names a request may give."""
    return {"providers": [d.name for d in service.deployments]}


def _error(status: int, error: str, detail: str, **headers: str) -> Response:
    response = answer(ErrorBody(error=error, detail=detail), status)
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


@blueprint.get("/api/llm/health")
@contract(HEALTH)
def health() -> Any:
    """Public: 200 while a provider can take requests, 503 when none can. Names no provider."""
    usable, total = usable_count(_service())
    body = Health(status="ok" if usable else "unavailable", usable_providers=usable, providers=total)
    return answer(body, 200 if usable else 503)


@blueprint.get("/api/llm/status")
@contract(STATUS)
@require_admin
def status() -> Any:
    return answer(Status.model_validate(provider_status(_service(), admin_settings())))


@blueprint.post("/api/llm/test")
@contract(TEST)
@require_admin
def test_providers() -> Any:
    service = _service()
    body = parsed(ProviderRequest, optional_json_object(), _configured(service))
    probes = requested_probes(service, [body.provider] if body.provider else None)
    results = probe_providers(service, probes, actor=f"probe:admin:{body.by}")
    return answer(ProbeResults.model_validate({"results": [r.as_dict() for r in results]}))


@blueprint.get("/api/llm/analytics")
@contract(ANALYTICS)
@require_admin
def analytics() -> Any:
    query = parsed(AnalyticsQuery, request.args.to_dict())
    since, until = query.span(time.time())
    try:
        window = TimeRange(since, until, BUCKETS[query.bucket])
    except AnalyticsRangeError as exc:  # what JSON Schema cannot say: since before until, at most 2000 buckets
        raise BadRequest(str(exc)) from None
    service = _service()
    report = analytics_report(service.store, [d.name for d in service.deployments], window)
    return answer(Analytics.model_validate({**report, "bucket": query.bucket}))


@blueprint.post("/api/llm/reset-failures")
@contract(RESET)
@require_admin
def reset_failures() -> Any:
    service = _service()
    body = parsed(ProviderRequest, optional_json_object(), _configured(service))
    actor = f"admin:{body.by}"
    names = [body.provider] if body.provider else [d.name for d in service.deployments]
    for name in names:
        service.health.reset(name, actor)
    return answer(ResetReply.model_validate({"reset": names, "actor": actor, "providers": _states(service, names)}))


@blueprint.post("/api/llm/providers/<name>/<action>")
@contract(TOGGLE)
@require_admin
def enable_or_disable(name: str, action: str) -> Any:
    service = _service()
    try:
        ProviderActionPath.parse({"action": action, "name": name}, _configured(service))
    except ContractViolation as exc:
        raise NotFound(str(exc)) from None
    actor = f"admin:{parsed(ActorRequest, optional_json_object()).by}"
    service.health.set_disabled(name, action == "disable", actor)
    return answer(ToggleReply.model_validate({"actor": actor, "providers": _states(service, [name])}))


@blueprint.get("/api/llm/providers")
@contract(PROVIDERS)
@require_admin
def providers() -> Any:
    service = _service()
    body = {
        "providers": [
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
        "left_out": dict(service.setup.left_out),
        "config": service.setup.source.name,
    }
    return answer(Providers.model_validate(body))


@blueprint.get("/api/openapi.json")
@contract(OPENAPI)
def openapi() -> Any:
    document = document_of(current_app, [d.name for d in _service().deployments])
    return answer(OpenApiDocument.model_validate(document))


def _states(service: LLMService, names: list[str]) -> list[dict[str, Any]]:
    return [{"provider": n, "state": (r := service.health.get(n)).state.value, "reason": r.reason} for n in names]
