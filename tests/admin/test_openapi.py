"""The OpenAPI document at /api/openapi.json, and schemathesis against it: no generated input gets a 500.

Schemathesis's pytest plugin (``from_fixture``) reads a pytest internal that pytest 9 removed, so each
operation's Hypothesis strategy is driven directly, with valid (positive) and invalid (negative) data.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from bot.admin.openapi import openapi_document
from tests.admin.conftest import AUTH

# Every JSON route the document describes: the admin API, the chat webhook and the suggestions.
ROUTES_UNDER_TEST = re.compile(r"^/(api|webhook)/")
# Invalid data only exists for operations that take some input.
CASES = [
    (method.upper(), path, mode)
    for path, operations in openapi_document()["paths"].items()
    if ROUTES_UNDER_TEST.match(path)
    for method, operation in operations.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_generated_input_gets_a_server_error(app: Flask, method: str, path: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = case.call(headers=AUTH)
        if path == "/api/llm/health":
            assert response.status_code in (200, 503)
        else:
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        assert response.headers["content-type"][0].startswith("application/json")
        if mode is GenerationMode.POSITIVE:
            case.validate_response(response, checks=[response_schema_conformance], headers=AUTH)

    check()


def test_the_document_describes_every_admin_route(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").json
    described = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    served = {
        (method, rule.rule.replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/llm/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    assert served <= described
    assert {"/webhook/chat", "/api/ai-suggestions/generate"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
