"""The OpenAPI 3.1 document, generated from the routes' ``Operation`` contracts and their pydantic models.

Every model becomes one entry of ``components/schemas`` (pydantic's JSON Schema, 2020-12, the dialect of
OpenAPI 3.1), referenced from the operations; request bodies are validated in the validation form of their
model, responses described in the serialization form. ``ProviderName`` is the one schema that depends on
the deployment: an enum of the providers it configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.contracts import PROVIDER_NAME, Operation
from bot.contracts.errors import ADMIN_ERRORS, STORE_UNAVAILABLE

REF_TEMPLATE = "#/components/schemas/{model}"
PROVIDER_NAME_REF = {"$ref": REF_TEMPLATE.format(model="ProviderName")}
TITLE = "Djobea AI"
VERSION = "1.0.0"
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before asking again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
Route = tuple[str, str, str, Operation]  # OpenAPI path ("/x/{name}"), method ("post"), operation id, contract


def openapi_document(routes: Iterable[Route], providers: Sequence[str]) -> dict[str, Any]:
    routes = sorted(routes, key=lambda route: (route[0], route[1]))
    refs, components = _component_schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation_id, operation in routes:
        paths.setdefault(path, {})[method] = _operation(operation, operation_id, refs)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Admin API of the LLM providers (bearer token) and the chat routes. Generated from "
            "the pydantic models of bot.contracts; every response object is closed.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **components,
                "ProviderName": {
                    "type": "string",
                    "enum": list(providers),
                    "description": "a provider this deployment configured (router_config)",
                },
            },
        },
    }
    return _bind_provider_names(document)


def _component_schemas(
    routes: Sequence[Route],
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]], dict[str, Any]]:
    """(model, mode) -> its ``$ref``, and the component schemas: bodies in validation form, responses in
    serialization form."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for _, _, _, operation in routes:
        if operation.body is not None:
            wanted[(operation.body, "validation")] = None
        for reply in operation.responses.values():
            wanted[(reply.model, "serialization")] = None
    refs, schema = models_json_schema(list(wanted), ref_template=REF_TEMPLATE)
    return dict(refs), schema.get("$defs", {})


def _operation(operation: Operation, operation_id: str, refs: dict) -> dict[str, Any]:
    document: dict[str, Any] = {"tags": list(operation.tags), "summary": operation.summary, "operationId": operation_id}
    if operation.admin:
        document["security"] = [{"bearerAuth": []}]
    parameters = [*_parameters(operation.path, "path"), *_parameters(operation.query, "query")]
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        document["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
        }
    # A route's own 503 (health, the limits' refusals) says more than the store's, so it wins.
    responses = {**STORE_UNAVAILABLE, **operation.responses, **(ADMIN_ERRORS if operation.admin else {})}
    document["responses"] = {
        str(status): {
            "description": reply.description,
            **({"headers": RETRY_AFTER} if reply.retry_after else {}),
            "content": {reply.media_type: {"schema": refs[(reply.model, "serialization")]}},
        }
        for status, reply in sorted(responses.items())
    }
    return document


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    """One OpenAPI parameter per field of a query or path model (flat fields only: no nested models)."""
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    assert "$defs" not in schema, f"{model.__name__}: a parameter model holds only plain fields"
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = {k: v for k, v in field_schema.items() if k not in ("title", "description")}
        parameter = {"name": name, "in": where, "required": where == "path" or name in required, "schema": field_schema}
        description = model.model_fields[name].description
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _bind_provider_names(node: Any) -> Any:
    """The document with every ``PROVIDER_NAME`` marker replaced by a reference to ``ProviderName``."""
    if node == PROVIDER_NAME:
        return PROVIDER_NAME_REF
    if isinstance(node, dict):
        return {key: _bind_provider_names(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_bind_provider_names(value) for value in node]
    return node
