"""The contracts are data: the OpenAPI document is generated from the pydantic models of ``bot.contracts``,
its response objects are closed, and a response that drifts from its model fails the suite.

Every response the suite gets is validated by the watch of ``tests/conftest.py``; here one app is driven
through every documented operation (so each is validated at least once whatever tests are selected), and
the watch is shown to catch what the issue found by hand: undeclared keys and undeclared statuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from bot.contracts import Operation, Reply, contract
from bot.contracts.admin import Health, parse_time
from bot.contracts.chat import NOT_WHITESPACE
from bot.web import create_app
from bot.web.contracts import EXTENSION as OPENAPI_EXTENSION
from tests.published_contract import WATCH, documented_operations, published

TOKEN = "contracts-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every operation the document must list; one test below calls each, so the watch validates each.
EVERY_OPERATION = {
    ("get", "/api/llm/health"),
    ("get", "/api/llm/status"),
    ("post", "/api/llm/test"),
    ("get", "/api/llm/analytics"),
    ("post", "/api/llm/reset-failures"),
    ("post", "/api/llm/providers/{name}/{action}"),
    ("get", "/api/llm/providers"),
    ("get", "/api/openapi.json"),
    ("post", "/webhook/chat"),
    ("post", "/api/ai-suggestions/generate"),
    ("get", "/api/requests"),
    ("get", "/api/requests.csv"),
    ("get", "/api/requests/{request_id}"),
    ("post", "/api/requests/{request_id}/status"),
    ("post", "/api/artisans"),
    ("get", "/api/artisans"),
    ("get", "/api/artisans/{artisan_id}"),
    ("patch", "/api/artisans/{artisan_id}"),
    ("delete", "/api/artisans/{artisan_id}"),
}


@pytest.fixture
def app(tmp_path: Path, provider_env: dict[str, str]) -> Iterator[Flask]:
    env = {**provider_env, "ADMIN_API_TOKEN": TOKEN, "WHATSAPP_WORKER_THREADS": "0", "CHAT_IP_REQUESTS_PER_MINUTE": "2"}
    yield create_app({"TESTING": True, "DATABASE_PATH": str(tmp_path / "bot.db"), "PROVIDER_ENV": env})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_the_document_lists_every_operation_and_only_those(app: Flask) -> None:
    assert documented_operations(app) == EVERY_OPERATION


def test_every_response_object_is_closed_and_every_schema_is_valid(app: Flask) -> None:
    document = published(app)
    schemas = document["components"]["schemas"]
    response_refs = {
        reply["content"]["application/json"]["schema"]["$ref"]
        for operations in document["paths"].values()
        for operation in operations.values()
        for reply in operation["responses"].values()
        if "application/json" in reply["content"]  # the CSV export is a string, not an object
    }

    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    for name in closure(schemas, {ref.rsplit("/", 1)[1] for ref in response_refs}):
        assert schemas[name].get("additionalProperties") is False, name


def closure(schemas: dict[str, Any], names: set[str]) -> set[str]:
    """``names`` and every component they refer to, however deep."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo.extend(ref.rsplit("/", 1)[1] for ref in refs_in(schemas[name]))
    return found


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def test_the_keys_the_issue_found_undeclared_are_declared(app: Flask) -> None:
    schemas = published(app)["components"]["schemas"]

    assert {"timeout_s", "state"} <= set(schemas["ConfiguredProvider"]["properties"])
    assert "config" in schemas["Providers"]["required"]
    assert "actor" in schemas["ToggleReply"]["required"]
    assert "conversation_id" in schemas["SuggestionsReply"]["required"]


def test_every_documented_operation_is_answered_as_documented(app: Flask, client: FlaskClient, emulator) -> None:
    """One app through every operation and most of its statuses; the watch validates each response."""
    first = client.post("/webhook/chat", json={"user": "u1", "message": "Bonjour, j'ai une fuite d'eau"})
    token = first.json["session"]
    calls = [
        ("get", "/api/llm/health", {}, 200),
        ("get", "/api/llm/status", {"headers": AUTH}, 200),
        ("get", "/api/llm/status", {}, 401),
        ("post", "/api/llm/test", {"headers": AUTH, "json": {"provider": "gemini", "by": "ci"}}, 200),
        ("post", "/api/llm/test", {"headers": AUTH, "json": {"provider": None}}, 200),
        ("post", "/api/llm/test", {"headers": AUTH, "json": {"provider": "mistral"}}, 400),
        ("get", "/api/llm/analytics", {"headers": AUTH, "query_string": {"bucket": "minute"}}, 200),
        (
            "get",
            "/api/llm/analytics",
            {"headers": AUTH, "query_string": {"since": "2025-01-31T08:00:00Z", "bucket": "day"}},
            200,
        ),
        ("get", "/api/llm/analytics", {"headers": AUTH, "query_string": {"since": "2000", "until": "1000"}}, 400),
        ("post", "/api/llm/reset-failures", {"headers": AUTH}, 200),
        ("post", "/api/llm/providers/openai/disable", {"headers": AUTH, "json": {"by": "alice"}}, 200),
        ("post", "/api/llm/providers/openai/enable", {"headers": AUTH}, 200),
        ("post", "/api/llm/providers/mistral/enable", {"headers": AUTH}, 404),
        ("get", "/api/llm/providers", {"headers": AUTH}, 200),
        ("get", "/api/openapi.json", {}, 200),
        ("post", "/webhook/chat", {"json": {"session": token, "message": "Je suis à Akwa"}}, 200),
        ("post", "/webhook/chat", {"json": {"session": "forged", "message": "?"}}, 401),
        ("post", "/webhook/chat", {"json": {"user": "u1", "message": "   "}}, 400),
        ("post", "/api/ai-suggestions/generate", {"json": {"session": token}}, 200),
        ("post", "/api/ai-suggestions/generate", {"json": {"message": "Bonjour", "session": None}}, 200),
        ("post", "/api/ai-suggestions/generate", {"json": {"message": "Bonjour"}}, 429),  # 2 a minute per address
        (
            "post",
            "/api/artisans",
            {"headers": AUTH, "json": {"name": "Alain", "whatsapp": "+237690000001", "trades": ["plomberie"]}},
            201,
        ),
        ("post", "/api/artisans", {"headers": AUTH, "json": {"name": "Alain"}}, 400),
        ("get", "/api/artisans", {"headers": AUTH}, 200),
        ("get", "/api/artisans/1", {"headers": AUTH}, 200),
        ("patch", "/api/artisans/1", {"headers": AUTH, "json": {"active": False}}, 200),
        ("delete", "/api/artisans/1", {"headers": AUTH}, 200),
        ("get", "/api/artisans/99", {"headers": AUTH}, 404),
        ("get", "/api/requests", {"headers": AUTH}, 200),
        ("get", "/api/requests.csv", {"headers": AUTH, "query_string": {"status": "confirmed"}}, 200),
        ("get", "/api/requests.csv", {"headers": AUTH, "query_string": {"status": "lost"}}, 400),
        ("get", "/api/requests/1", {"headers": AUTH}, 404),
        ("post", "/api/requests/1/status", {"headers": AUTH, "json": {"status": "done"}}, 404),
        # schemathesis found this one: an id SQLite cannot hold was a 500
        ("post", "/api/requests/1/status", {"headers": AUTH, "json": {"status": "assigned", "artisan_id": 2**70}}, 400),
    ]

    for method, path, options, status in calls:
        response = getattr(client, method)(path, **options)
        assert response.status_code == status, (method, path, response.json)

    assert WATCH.operations_seen(app) == EVERY_OPERATION
    assert emulator.call_count() > 0


def test_the_watch_catches_an_undeclared_key_and_an_undeclared_status(app: Flask) -> None:
    drifting = Operation(summary="drifts", tags=("test",), responses={200: Reply(Health, "health")})

    @contract(drifting)
    def drift() -> Any:
        return jsonify(status="ok", usable_providers=1, providers=1, timeout_s=30.0)

    @contract(drifting)
    def teapot() -> Any:
        return jsonify(status="ok", usable_providers=1, providers=1), 418

    app.add_url_rule("/api/test/drift", view_func=drift)
    app.add_url_rule("/api/test/teapot", view_func=teapot)
    start = len(WATCH.mismatches)

    app.test_client().get("/api/test/drift")
    app.test_client().get("/api/test/teapot")

    caught = WATCH.mismatches[start:]
    del WATCH.mismatches[start:]  # shown here, not failures of this test
    assert len(caught) == 2, caught
    assert caught[0].startswith("GET /api/test/drift -> 200: response body, at (root): Additional properties")
    assert "'timeout_s' was unexpected" in caught[0]
    assert "GET /api/test/teapot -> 418" in caught[1] and "no such status" in caught[1]


def test_a_route_that_accepts_what_its_document_refuses_is_caught(app: Flask) -> None:
    """Schemathesis's ST201 from the inside: a 2xx to a body the document calls invalid is a mismatch."""
    start = len(WATCH.mismatches)
    document = published(app)
    schema = document["paths"]["/api/llm/reset-failures"]["post"]["requestBody"]["content"]["application/json"]
    schema["schema"] = {"type": "object", "properties": {"provider": {"type": "string"}}}  # as the old document

    response = app.test_client().post("/api/llm/reset-failures", headers=AUTH, json={"provider": None})

    caught = WATCH.mismatches[start:]
    del WATCH.mismatches[start:]
    app.extensions.pop(OPENAPI_EXTENSION)  # the tampered document goes; the next use builds it again
    assert response.status_code == 200
    assert caught == [
        "POST /api/llm/reset-failures -> 200: accepted a request body the document refuses, at provider: "
        "None is not of type 'string'"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0.0),
        ("-1.5e3", -1500.0),
        ("1e11", 1e11),
        ("2025-01-31T08:00:00Z", 1738310400.0),
        ("2025-01-31t09:00:00.5+01:00", 1738310400.5),
        ("2016-12-31T23:59:60Z", 1483228800.0),  # a leap second is the next second
        ("2025-01-31", 1738281600.0),  # a date is its midnight UTC
        ("0000-01-01T00:00:00Z", -62167219200.0),  # RFC 3339 allows year 0000 (1 BC)
    ],
)
def test_times_the_analytics_document_declares_are_read(raw: str, expected: float) -> None:
    assert parse_time(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "nan", "inf", "1_000", "1e12", " 5", "2025-01-31T08:00:00", "2025-02-30", "2025-01-31T08:00Z", "now"]
)
def test_times_the_document_refuses_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_time(raw)


def test_the_non_blank_pattern_is_pythons_whitespace_spelled_out() -> None:
    """``str.strip`` and the document's pattern must agree on what is blank, character by character."""
    import re

    pattern = re.compile(NOT_WHITESPACE)
    blank = [chr(c) for c in range(0x110000) if not pattern.fullmatch(chr(c))]

    assert blank == [chr(c) for c in range(0x110000) if chr(c).isspace()]
