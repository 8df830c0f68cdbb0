"""Admin auth: bearer token compared in constant time; 401 without it, 403 when none is configured."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.admin.conftest import AUTH, TOKEN

ADMIN_ROUTES = [
    ("GET", "/api/llm/status"),
    ("GET", "/api/llm/analytics"),
    ("GET", "/api/llm/providers"),
    ("POST", "/api/llm/test"),
    ("POST", "/api/llm/reset-failures"),
    ("POST", "/api/llm/providers/claude/disable"),
    ("POST", "/api/llm/providers/claude/enable"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_refuse_a_missing_token(client: FlaskClient, method: str, path: str, emulator) -> None:
    response = client.open(path, method=method)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in response.json["detail"]
    assert emulator.call_count() == 0  # nothing ran: no probe was sent


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer ", "Bearer é"],
)
def test_admin_routes_refuse_a_wrong_token(client: FlaskClient, header: str) -> None:
    response = client.get("/api/llm/status", headers={"Authorization": header})

    assert response.status_code == 401
    assert TOKEN not in response.get_data(as_text=True)


def test_the_right_token_opens_every_admin_route(client: FlaskClient) -> None:
    for method, path in ADMIN_ROUTES:
        response = client.open(path, method=method, headers=AUTH)
        assert response.status_code == 200, (path, response.json)
    assert client.get("/api/llm/status", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_without_a_configured_token_admin_routes_are_forbidden_not_open(make_app) -> None:
    client = make_app(env={"ADMIN_API_TOKEN": ""}).test_client()

    for method, path in ADMIN_ROUTES:
        response = client.open(path, method=method, headers=AUTH)
        assert response.status_code == 403
        assert "ADMIN_API_TOKEN is not configured" in response.json["detail"]


def test_health_is_public_and_reveals_nothing_sensitive(client: FlaskClient, admin_env: dict[str, str]) -> None:
    response = client.get("/api/llm/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "usable_providers": 3, "providers": 3}
    text = response.get_data(as_text=True)
    for secret in (TOKEN, admin_env["ANTHROPIC_API_KEY"], admin_env["OPENAI_API_KEY"], "127.0.0.1"):
        assert secret not in text


def test_deeply_nested_json_is_a_400_not_a_500(client: FlaskClient) -> None:
    for path in ("/api/llm/test", "/api/llm/reset-failures", "/api/llm/providers/claude/disable"):
        response = client.post(path, data="[" * 100_000, headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 400, path
        assert "nests too deeply" in response.json["detail"]
