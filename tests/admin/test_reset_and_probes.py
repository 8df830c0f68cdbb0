"""Reset, probes and probe-driven recovery: what one process changes, every process sees."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from flask.testing import FlaskClient

from bot.admin.selftest import run_scheduled_selftest
from bot.admin.settings import AdminSettings
from bot.llm import LLMService
from bot.services import Services
from tests.admin.conftest import AUTH, BOT_COMMAND, REPO_ROOT, process_env

CHAT = [{"role": "user", "content": "Il y a une fuite sous l'évier"}]


def test_reset_is_seen_by_a_second_process(
    client: FlaskClient, services: Services, emulator, admin_env: dict[str, str], tmp_path: Path
) -> None:
    emulator.set_fault("claude", "credit_exhausted", times=1)
    assert services.llm.service.complete(CHAT).provider == "gemini"
    assert services.llm.service.health.get("claude").state == "benched"

    response = client.post("/api/llm/reset-failures", headers=AUTH, json={"provider": "claude", "by": "alice"})

    assert response.status_code == 200
    assert response.json["providers"] == [{"provider": "claude", "state": "healthy", "reason": "reset by admin"}]
    other = subprocess.run(
        [*BOT_COMMAND, "status", "--json"],
        env=process_env(admin_env, tmp_path / "bot.db"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 0, other.stderr
    seen = {p["provider"]: p for p in json.loads(other.stdout)["providers"]}
    assert seen["claude"]["state"] == "healthy" and seen["claude"]["reason"] == "reset by admin"
    assert json.loads(other.stdout)["next_provider"] == "claude"
    event = list(services.store.db.query("select * from provider_events order by id desc limit 1"))[0]
    assert (event["from_state"], event["to_state"], event["actor"]) == ("benched", "healthy", "admin:alice")
    assert event["at"] >= time.time() - 60


def test_reset_all_leaves_disabled_providers_disabled(client: FlaskClient, services: Services, emulator) -> None:
    emulator.set_fault("claude", "auth_failed")
    services.llm.service.complete(CHAT)
    client.post("/api/llm/providers/openai/disable", headers=AUTH)

    response = client.post("/api/llm/reset-failures", headers=AUTH)

    assert response.json["reset"] == ["claude", "gemini", "openai"]
    assert [p["state"] for p in response.json["providers"]] == ["healthy", "healthy", "disabled"]


def test_reset_rejects_bad_bodies(client: FlaskClient) -> None:
    cases = [
        (b"[1]", "the body must be a JSON object"),
        (b"{not json", "the body must be a JSON object"),
        (json.dumps({"provider": "mistral"}).encode(), "unknown provider 'mistral'"),
        (json.dumps({"provider": 3}).encode(), "provider: must be a string"),
        (json.dumps({"providers": "claude"}).encode(), "unknown field 'providers'"),
    ]
    for body, detail in cases:
        response = client.post("/api/llm/reset-failures", headers=AUTH, data=body, content_type="application/json")
        assert response.status_code == 400 and detail in response.json["detail"], body


def test_test_route_probes_one_provider_with_a_tiny_prompt(client: FlaskClient, emulator) -> None:
    response = client.post("/api/llm/test", headers=AUTH, json={"provider": "gemini"})

    assert response.status_code == 200
    [result] = response.json["results"]
    assert (result["provider"], result["outcome"], result["model"]) == ("gemini", "success", "gemini/gemini-2.5-flash")
    assert result["latency_ms"] > 0 and result["state"] == "healthy"
    [call] = emulator.calls()
    assert call.provider == "gemini" and call.request.max_tokens == 5


def test_a_passing_probe_unbenches_and_a_failing_one_says_why(
    client: FlaskClient, services: Services, emulator
) -> None:
    emulator.set_fault("claude", "credit_exhausted")
    services.llm.service.complete(CHAT)

    failed = client.post("/api/llm/test", headers=AUTH, json={"provider": "claude"}).json["results"][0]
    assert (failed["outcome"], failed["error_kind"], failed["http_status"], failed["state"]) == (
        "failure",
        "credit_exhausted",
        400,
        "benched",
    )
    emulator.clear_fault("claude")
    passed = client.post("/api/llm/test", headers=AUTH, json={"provider": "claude", "by": "bob"}).json["results"][0]
    assert (passed["outcome"], passed["state"]) == ("success", "healthy")
    assert services.llm.service.complete(CHAT).provider == "claude"
    actors = [r["actor"] for r in services.store.db.query("select actor from provider_events order by id")]
    assert actors == ["traffic", "probe:admin:bob"]


def test_scheduled_selftest_recovers_benched_providers_and_leaves_busy_ones_alone(services: Services, emulator) -> None:
    service = services.llm.service
    emulator.set_fault("claude", "credit_exhausted")
    service.complete(CHAT)  # claude benched, gemini answered: gemini is busy, openai never called
    settings = AdminSettings(idle_probe_after_s=3600)
    calls_before = {p: emulator.call_count(p) for p in ("claude", "gemini", "openai")}

    first = run_scheduled_selftest(service, settings)

    assert sorted((r.provider, r.why, r.outcome) for r in first) == [
        ("claude", "benched", "failure"),
        ("openai", "idle", "success"),
    ]
    assert emulator.call_count("gemini") == calls_before["gemini"]  # live traffic already tells about it
    assert service.health.get("claude").state == "benched"  # still out of credit: stays benched
    emulator.clear_fault("claude")  # the admin topped up

    second = run_scheduled_selftest(service, settings)

    assert [(r.provider, r.why, r.outcome, r.state_after) for r in second] == [
        ("claude", "benched", "success", "healthy")
    ]
    assert service.complete(CHAT).provider == "claude"
    assert run_scheduled_selftest(service, settings) == []  # nothing benched, nobody idle


def test_scheduled_selftest_skips_disabled_and_still_cooling_providers(
    client: FlaskClient, services: Services, emulator
) -> None:
    service = services.llm.service
    emulator.set_fault("claude", "rate_limited", retry_after=300, times=1)
    service.complete(CHAT)
    client.post("/api/llm/providers/openai/disable", headers=AUTH)
    emulator.reset()

    results = run_scheduled_selftest(service, AdminSettings(idle_probe_after_s=0))

    assert [(r.provider, r.why) for r in results] == [("gemini", "idle")]
    assert emulator.call_count("claude") == emulator.call_count("openai") == 0

    def later() -> float:
        return time.time() + 400

    # The scheduler and the provider health of that later time (the probe lease is claimed on the health's clock).
    later_service = LLMService(service.setup, service.store, later)
    results = run_scheduled_selftest(later_service, AdminSettings(idle_probe_after_s=0), clock=later)
    assert sorted(r.provider for r in results) == ["claude", "gemini"]
    assert [(r.why, r.state_after) for r in results if r.provider == "claude"] == [("cooldown_over", "healthy")]
