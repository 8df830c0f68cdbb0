"""The staff API of dispatch: requests (``/api/requests``) and the artisan directory (``/api/artisans``).

Every route but the CSV carries its contract (``bot.contracts.dispatch``), so the OpenAPI document lists it
(the CSV is not JSON, which the generator does not describe). Every route needs ``Authorization: Bearer
<ADMIN_API_TOKEN>`` (compared in constant time; 403 when the server has none).
The work is done by ``bot.dispatch`` (the ``Dispatch`` of the process's services); this module reads
requests and maps the domain's refusals to statuses: ``InvalidInput`` 400 (naming the field), ``NotFound``
404, ``Conflict`` 409 (a duplicate number, an illegal status change, with the reason). Error bodies are
``{"error", "detail"}`` like the rest of the admin API.

    GET    /api/requests            ?status=a,b&service_type=&quartier=&since=&until=&cursor=&limit=
                                    -> {"requests": [request...], "next": cursor | null}, newest first
    GET    /api/requests.csv        same filters, every matching request, text/csv
    GET    /api/requests/<id>       -> the request whole (conversation, offers, events, messages)
    POST   /api/requests/<id>/status  {"status", "note"?, "by"?, "artisan_id"?} -> {"request": request}
    POST   /api/artisans            {"name", "whatsapp", "trades", "quartiers"?, "active"?} -> 201 artisan
    GET    /api/artisans            ?active=true|false&trade=&quartier= -> {"artisans": [artisan...]}
    GET    /api/artisans/<id>       -> artisan
    PATCH  /api/artisans/<id>       any of name, whatsapp, trades, quartiers, active -> artisan
    DELETE /api/artisans/<id>       pauses (history kept) -> artisan
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, jsonify, request

from bot.contracts import contract
from bot.contracts.dispatch import (
    CHANGE_STATUS,
    CREATE_ARTISAN,
    GET_ARTISAN,
    GET_REQUEST,
    ID_MAX,
    LIST_ARTISANS,
    LIST_REQUESTS,
    PAUSE_ARTISAN,
    REQUESTS_CSV,
    UPDATE_ARTISAN,
)
from bot.dispatch import Conflict, DispatchError, IllegalTransition, InvalidInput, NotFound
from bot.web.app_services import current_services

if TYPE_CHECKING:
    from bot.dispatch import Dispatch
    from bot.services import Services

ACTOR_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,40}$")
NOTE_MAX_CHARS = 500

blueprint = Blueprint("dispatch_api", __name__)


def init_app(app: Flask, services: Services) -> None:
    """Register the routes; they use ``services.dispatch`` and ``services.admin_settings`` per request."""
    app.register_blueprint(blueprint)


def _dispatch() -> Dispatch:
    return current_services().dispatch


def _id(raw: str) -> int:
    """A path id; anything but digits names nothing (404). The watch of the document reads rules without
    converters, so ids are checked here rather than with ``<int:...>``."""
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no such id {raw[:20]!r}")
    return int(raw)


def _error(status: int, error: str, detail: str, **extra: Any) -> Response:
    response = jsonify(error=error, detail=detail, **extra)
    response.status_code = status
    return response


@blueprint.errorhandler(DispatchError)
def _refused(exc: DispatchError) -> Response:
    if isinstance(exc, InvalidInput):
        return _error(400, "Bad Request", str(exc), field=exc.field)
    if isinstance(exc, NotFound):
        return _error(404, "Not Found", str(exc))
    if isinstance(exc, IllegalTransition):
        return _error(409, "Conflict", str(exc), current=exc.current, target=exc.target)
    if isinstance(exc, Conflict):
        return _error(409, "Conflict", str(exc))
    return _error(400, "Bad Request", str(exc))


def require_admin(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 without the right bearer token; 403 when the server has no token configured."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        token = current_services().admin_settings.admin_api_token
        if token is None:
            return _error(403, "Forbidden", "the admin API is disabled: ADMIN_API_TOKEN is not configured")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = _error(401, "Unauthorized", "send Authorization: Bearer <ADMIN_API_TOKEN>")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return view(*args, **kwargs)

    return guarded


def _body(allowed: set[str], required: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The request's JSON object; not an object, an unknown field or a missing one is an ``InvalidInput``."""
    try:
        body = request.get_json(force=True, silent=True) if request.get_data(cache=True).strip() else {}
    except RecursionError:
        raise InvalidInput("body", "nests too deeply") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(body))
    if missing:
        raise InvalidInput(missing[0], "is required")
    return body


def _given(*names: str) -> None:
    """A query parameter given empty is refused (the document declares none empty) rather than ignored."""
    for name in names:
        if name in request.args and not request.args[name].strip():
            raise InvalidInput(name, "must not be empty; leave the parameter out instead")


def _artisan_body(allowed: set[str], required: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An artisan's fields as JSON gives them: lists of strings and a boolean. (The domain also reads the CSV's
    forms, "plomberie;électricité" and "oui"; the API takes the JSON ones its document declares.)"""
    body = _body(allowed, required)
    for name in ("trades", "quartiers"):
        value = body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidInput(name, "a list of strings")
    if not isinstance(body.get("active", True), bool):
        raise InvalidInput("active", "true or false")
    for name in ("name", "whatsapp"):
        if name in body and not isinstance(body[name], str):
            raise InvalidInput(name, "must be a string")
    return body


def _filters() -> Any:
    _given("status", "service_type", "quartier", "since", "until", "cursor")
    args = request.args
    return _dispatch().requests.filter(
        status=args.get("status"),
        service_type=args.get("service_type"),
        quartier=args.get("quartier"),
        since=args.get("since"),
        until=args.get("until"),
    )


# --- requests ------------------------------------------------------------------------------------------------


@blueprint.get("/api/requests")
@contract(LIST_REQUESTS)
@require_admin
def list_requests() -> Any:
    raw_limit = request.args.get("limit", "50")
    if not raw_limit.isdigit():
        raise InvalidInput("limit", "must be a whole number")
    requests, next_cursor = _dispatch().requests.page(_filters(), request.args.get("cursor"), int(raw_limit))
    return jsonify(requests=requests, next=next_cursor)


@blueprint.get("/api/requests.csv")
@contract(REQUESTS_CSV)
@require_admin
def requests_csv() -> Any:
    return Response(
        _dispatch().requests.csv(_filters()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="demandes.csv"'},
    )


@blueprint.get("/api/requests/<request_id>")
@contract(GET_REQUEST)
@require_admin
def get_request(request_id: str) -> Any:
    return jsonify(_dispatch().requests.get(_id(request_id)))


@blueprint.post("/api/requests/<request_id>/status")
@contract(CHANGE_STATUS)
@require_admin
def change_status(request_id: str) -> Any:
    number = _id(request_id)
    body = _body({"status", "note", "by", "artisan_id"}, frozenset({"status"}))
    by = body.get("by", "api")
    if not isinstance(by, str) or not ACTOR_PATTERN.match(by):
        raise InvalidInput("by", "1-40 characters among letters, digits and . _ @ -")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MAX_CHARS):
        raise InvalidInput("note", f"a string of at most {NOTE_MAX_CHARS} characters")
    artisan_id = body.get("artisan_id")
    if isinstance(artisan_id, float) and artisan_id.is_integer():
        artisan_id = int(artisan_id)  # JSON has one number type: 7.0 is the integer 7
    if artisan_id is not None and (
        not isinstance(artisan_id, int) or isinstance(artisan_id, bool) or not 0 <= artisan_id <= ID_MAX
    ):
        raise InvalidInput("artisan_id", "an artisan id (integer)")
    status = body["status"]
    if not isinstance(status, str):
        raise InvalidInput("status", "must be a string")
    dispatch = _dispatch()
    dispatch.change_status(number, status, f"admin:{by}", note=note, artisan_id=artisan_id)
    return jsonify(request=dispatch.requests.get(number))


# --- artisans ------------------------------------------------------------------------------------------------


@blueprint.post("/api/artisans")
@contract(CREATE_ARTISAN)
@require_admin
def create_artisan() -> Any:
    body = _artisan_body(
        {"name", "whatsapp", "trades", "quartiers", "active"}, frozenset({"name", "whatsapp", "trades"})
    )
    artisan = _dispatch().directory.create(
        body["name"], body["whatsapp"], body["trades"], body.get("quartiers", []), body.get("active", True)
    )
    response = jsonify(artisan.as_dict())
    response.status_code = 201
    response.headers["Location"] = f"/api/artisans/{artisan.id}"
    return response


@blueprint.get("/api/artisans")
@contract(LIST_ARTISANS)
@require_admin
def list_artisans() -> Any:
    _given("active", "trade", "quartier")
    raw = request.args.get("active")
    active = None
    if raw is not None:
        if raw not in ("true", "false"):
            raise InvalidInput("active", "true or false")
        active = raw == "true"
    artisans = _dispatch().directory.list(
        active=active, trade=request.args.get("trade") or None, quartier=request.args.get("quartier") or None
    )
    return jsonify(artisans=[a.as_dict() for a in artisans])


@blueprint.get("/api/artisans/<artisan_id>")
@contract(GET_ARTISAN)
@require_admin
def get_artisan(artisan_id: str) -> Any:
    return jsonify(_dispatch().directory.get(_id(artisan_id)).as_dict())


@blueprint.patch("/api/artisans/<artisan_id>")
@contract(UPDATE_ARTISAN)
@require_admin
def update_artisan(artisan_id: str) -> Any:
    body = _artisan_body({"name", "whatsapp", "trades", "quartiers", "active"})
    return jsonify(_dispatch().directory.update(_id(artisan_id), body).as_dict())


@blueprint.delete("/api/artisans/<artisan_id>")
@contract(PAUSE_ARTISAN)
@require_admin
def pause_artisan(artisan_id: str) -> Any:
    return jsonify(_dispatch().directory.pause(_id(artisan_id)).as_dict())
