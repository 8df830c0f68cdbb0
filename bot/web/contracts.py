"""How the routes apply ``bot.contracts``: a request is read through its model (a 400 naming the field when it
does not fit), a response is answered through its model, and the app's OpenAPI document is built from the
contracts its routes carry.

The document is built once per app, on first use, from ``app.url_map``: a route is documented exactly when
its view carries a contract (``bot.contracts.contract``), under the path and methods Flask serves it at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from flask import Flask, Response, jsonify
from werkzeug.exceptions import BadRequest

from bot.contracts import ContractViolation, RequestModel, ResponseModel, contract_of
from bot.contracts.openapi import Route, openapi_document

EXTENSION = "djobea.openapi"
Model = TypeVar("Model", bound=RequestModel)
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def parsed(model: type[Model], data: object, context: Mapping[str, Any] | None = None) -> Model:
    """``data`` validated by ``model``; a 400 whose detail names what is wrong otherwise."""
    try:
        return model.parse(data, context)
    except ContractViolation as exc:
        raise BadRequest(str(exc)) from None


def answer(body: ResponseModel, status: int = 200) -> Response:
    response = jsonify(body.body())
    response.status_code = status
    return response


def documented_routes(app: Flask) -> list[Route]:
    """(OpenAPI path, method, endpoint, contract) of every route whose view carries a contract."""
    routes = []
    for rule in app.url_map.iter_rules():
        operation = contract_of(app.view_functions[rule.endpoint])
        if operation is None:
            continue
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((path, method.lower(), rule.endpoint, operation))
    return routes


def document_of(app: Flask, providers: Sequence[str]) -> dict[str, Any]:
    """The app's OpenAPI document (built on first use, then kept: routes and providers are fixed at start-up)."""
    document = app.extensions.get(EXTENSION)
    if document is None:
        document = app.extensions[EXTENSION] = openapi_document(documented_routes(app), providers)
    return document
