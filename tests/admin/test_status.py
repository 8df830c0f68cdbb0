"""``/api/llm/status``, ``/api/llm/health``, ``/api/llm/providers`` and enable/disable after scripted faults."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from bot.llm import AllProvidersFailed
from bot.services import Services
from tests.admin.conftest import AUTH, TOKEN

CHAT = [{"role": "user", "content": "Mon chauffe-eau ne chauffe plus"}]


def by_name(status: dict) -> dict[str, dict]:
    return {p["provider"]: p for p in status["providers"]}


def test_status_after_scripted_faults(client: FlaskClient, services: Services, emulator) -> None:
    emulator.set_fault("claude", "credit_exhausted")
    emulator.set_fault("gemini", "rate_limited", retry_after=120)
    before = time.time()

    completion = services.llm.service.complete(CHAT)

    assert completion.provider == "openai"
    status = client.get("/api/llm/status", headers=AUTH).json
    providers = by_name(status)
    assert [p["provider"] for p in status["providers"]] == ["claude", "gemini", "openai"]
    assert status["next_provider"] == "openai"
    assert status["usable_providers"] == 1

    claude = providers["claude"]
    assert (claude["state"], claude["error_kind"], claude["usable"]) == ("benched", "credit_exhausted", False)
    assert "credit balance is too low" in claude["reason"]
    assert "top up" in claude["advice"]
    assert claude["since"] >= before and claude["until"] is None
    assert claude["consecutive_failures"] == 1
    assert claude["last_success_at"] is None and claude["last_failure_at"] >= before
    assert claude["last_hour"]["requests"] == 1 and claude["last_hour"]["success_rate"] == 0

    gemini = providers["gemini"]
    assert (gemini["state"], gemini["error_kind"]) == ("cooling_down", "rate_limited")
    assert before + 119 <= gemini["until"] <= time.time() + 121

    openai = providers["openai"]
    assert (openai["state"], openai["usable"]) == ("healthy", True)
    assert openai["last_success_at"] >= before
    assert openai["last_hour"]["requests"] == 1 and openai["last_hour"]["success_rate"] == 1.0
    assert openai["last_hour"]["latency_ms"]["p50"] > 0


def test_status_shows_when_the_next_probe_comes(client: FlaskClient, services: Services, emulator) -> None:
    emulator.set_fault("claude", "auth_failed")
    services.llm.service.complete(CHAT)
    services.store.db["scheduler_runs"].insert({"job": "selftest", "last_started_at": time.time(), "runs": 1})

    status = client.get("/api/llm/status", headers=AUTH).json

    claude = by_name(status)["claude"]
    assert claude["state"] == "benched" and "key" in claude["advice"]
    assert claude["next_probe_at"] > time.time() + 200  # the next self-test run, 5 minutes after the last one
    assert by_name(status)["gemini"]["next_probe_at"] > time.time() + 3000  # busy: only once idle for an hour
    assert status["scheduler"]["selftest"]["runs"] == 1


def test_health_is_503_when_no_provider_is_usable(client: FlaskClient, services: Services, emulator) -> None:
    for provider in ("claude", "gemini", "openai"):
        emulator.set_fault(provider, "credit_exhausted")

    with pytest.raises(AllProvidersFailed):
        services.llm.service.complete(CHAT)

    response = client.get("/api/llm/health")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "usable_providers": 0, "providers": 3}
    assert client.get("/api/llm/status", headers=AUTH).json["next_provider"] is None


def test_disable_and_enable_by_hand(client: FlaskClient, services: Services, emulator) -> None:
    response = client.post("/api/llm/providers/claude/disable", headers=AUTH, json={"by": "alice"})

    assert response.status_code == 200
    assert response.json["providers"][0]["state"] == "disabled"
    assert services.llm.service.complete(CHAT).provider == "gemini"
    assert emulator.call_count("claude") == 0
    status = by_name(client.get("/api/llm/status", headers=AUTH).json)
    assert status["claude"]["state"] == "disabled" and "enable" in status["claude"]["advice"]

    assert client.post("/api/llm/providers/claude/enable", headers=AUTH).json["providers"][0]["state"] == "healthy"
    assert services.llm.service.complete(CHAT).provider == "claude"
    events = list(services.store.db.query("select to_state, actor from provider_events order by id"))
    assert events == [
        {"to_state": "disabled", "actor": "admin:alice"},
        {"to_state": "healthy", "actor": "admin:api"},
    ]


def test_enable_disable_reject_unknown_names_and_actions(client: FlaskClient) -> None:
    assert client.post("/api/llm/providers/mistral/disable", headers=AUTH).status_code == 404
    assert client.post("/api/llm/providers/claude/explode", headers=AUTH).status_code == 404
    response = client.post("/api/llm/providers/claude/disable", headers=AUTH, json={"by": "x y"})
    assert response.status_code == 400 and response.json["detail"].startswith("by:")


def test_providers_lists_order_models_and_masked_keys(client: FlaskClient, admin_env: dict[str, str]) -> None:
    response = client.get("/api/llm/providers", headers=AUTH)

    providers = response.json["providers"]
    assert [(p["provider"], p["order"], p["model"]) for p in providers] == [
        ("claude", 1, "anthropic/claude-haiku-4-5"),
        ("gemini", 2, "gemini/gemini-2.5-flash"),
        ("openai", 3, "openai/gpt-4o-mini"),
    ]
    assert [p["api_key"] for p in providers] == ["***0001", "***0002", "***0003"]
    assert providers[2]["api_base"] == admin_env["OPENAI_API_BASE"]
    text = response.get_data(as_text=True)
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        assert admin_env[name] not in text
    assert TOKEN not in text
