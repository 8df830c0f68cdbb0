"""``/api/llm/analytics``: the numbers equal what the emulated providers received."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from bot.admin.analytics import TimeRange, analytics_report
from bot.llm import AllProvidersFailed, load_router_config
from bot.llm.error_kinds import Classified, ErrorKind
from bot.llm.health import ProviderHealth
from bot.services import Services
from tests.admin.conftest import AUTH


def ask(services: Services, text: str, purpose: str = "chat") -> str | None:
    try:
        return services.llm.service.complete([{"role": "user", "content": text}], purpose=purpose).provider
    except AllProvidersFailed:
        return None


def test_analytics_equal_what_the_providers_received(client: FlaskClient, services: Services, emulator) -> None:
    ask(services, "un")  # claude answers
    emulator.set_fault("claude", "server_error", times=1)  # fails once, its quick retry answers
    ask(services, "deux")
    emulator.set_fault("claude", "credit_exhausted")
    emulator.set_fault("gemini", "rate_limited", retry_after=60)
    ask(services, "trois")  # claude benched, gemini cooling: openai answers
    ask(services, "quatre", purpose="suggestions")  # straight to openai

    body = client.get("/api/llm/analytics", headers=AUTH).json

    providers = {p["provider"]: p for p in body["providers"]}
    for name in ("claude", "gemini", "openai"):
        calls = emulator.calls(name)
        assert providers[name]["requests"] == emulator.call_count(name) == len(calls)
        assert providers[name]["successes"] == sum(1 for c in calls if c.status == 200)
        assert providers[name]["failures"] == sum(1 for c in calls if c.status != 200)
    assert [providers[n]["requests"] for n in ("claude", "gemini", "openai")] == [4, 1, 2]
    assert providers["claude"]["failures_by_kind"] == {"server_error": 1, "credit_exhausted": 1}
    assert providers["gemini"]["failures_by_kind"] == {"rate_limited": 1}
    assert providers["claude"]["load_share"] == 0.5 and providers["openai"]["load_share"] == 0.5
    assert providers["openai"]["fallback_rate"] == 1.0 and providers["claude"]["fallback_rate"] == 0.0
    assert providers["claude"]["attempt_share"] == round(4 / 7, 4)
    assert {p["purpose"]: p["requests"] for p in providers["openai"]["purposes"]} == {"chat": 1, "suggestions": 1}
    for name in ("claude", "openai"):
        assert providers[name]["cost_usd"] > 0 and providers[name]["output_tokens"] > 0
        p = providers[name]["latency_ms"]
        assert 0 < p["p50"] <= p["p95"] <= p["p99"]
    assert providers["gemini"]["latency_ms"]["p50"] is None  # no answer, no latency to report
    totals = body["totals"]
    assert (totals["requests"], totals["answered"], totals["answered_by_fallback"]) == (4, 4, 2)
    assert totals["fallback_rate"] == 0.5 and totals["attempts"] == emulator.call_count() == 7
    series = Counter()
    for point in body["series"]:
        series[point["provider"]] += point["requests"]
    assert series == {name: emulator.call_count(name) for name in ("claude", "gemini", "openai")}


def test_probe_tokens_are_reported_per_day(client: FlaskClient, services: Services, emulator) -> None:
    ask(services, "une vraie question de client")

    assert client.post("/api/llm/test", headers=AUTH).status_code == 200

    day = client.get("/api/llm/analytics", headers=AUTH).json["selftest_by_day"]
    assert len(day) == 1 and day[0]["probes"] == 3
    assert 0 < day[0]["tokens"] <= 3 * (20 + 5)  # a tiny prompt and at most 5 tokens of answer each
    assert all(call.request.max_tokens == 5 for call in emulator.calls() if "OK" in call.request.last_user_text)
    today = client.get("/api/llm/status", headers=AUTH).json["probes_today"]
    assert today["probes"] == 3 and today["tokens"] == day[0]["tokens"]


def test_time_spent_benched_comes_from_the_events(store, provider_env) -> None:
    now = [1_000.0]
    health = ProviderHealth(store, load_router_config(None, provider_env).reliability, clock=lambda: now[0])
    health.record_failure("claude", Classified(ErrorKind.CREDIT_EXHAUSTED, 400, None), "credit")
    now[0] = 1_600.0
    health.reset("claude", "admin:test")
    now[0] = 1_700.0
    health.set_disabled("openai", True, "admin:test")

    report = analytics_report(store, ["claude", "gemini", "openai"], TimeRange(900.0, 2_000.0, 3600))

    providers = {p["provider"]: p for p in report["providers"]}
    assert providers["claude"]["benched_seconds"] == 600.0
    assert providers["openai"]["seconds_by_state"]["disabled"] == 300.0
    assert providers["gemini"]["seconds_by_state"] == {"benched": 0.0, "cooling_down": 0.0, "disabled": 0.0}
    later = analytics_report(store, ["claude"], TimeRange(1_200.0, 1_300.0, 60))
    assert later["providers"][0]["benched_seconds"] == 100.0  # benched before the window began


def test_analytics_accept_iso_times_and_buckets(client: FlaskClient, services: Services) -> None:
    ask(services, "bonjour")
    since = datetime.fromtimestamp(time.time() - 3 * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.get(
        "/api/llm/analytics",
        headers=AUTH,
        query_string={"since": since, "until": str(time.time() + 60), "bucket": "day"},
    )
    assert response.status_code == 200
    assert response.json["bucket"] == "day" and response.json["totals"]["requests"] == 1


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"since": "yesterday"}, "since:"),
        ({"until": "nan"}, "until:"),
        ({"since": "1e300"}, "since:"),
        ({"since": "2000", "until": "1000"}, "until: must be after since"),
        ({"bucket": "week"}, "bucket: must be one of"),
        ({"since": "0", "until": "1000000", "bucket": "minute"}, "bucket: the range would need"),
        ({"sort": "cost"}, "unknown query parameter 'sort'"),
    ],
)
def test_bad_analytics_queries_are_precise_400s(client: FlaskClient, query: dict, detail: str) -> None:
    response = client.get("/api/llm/analytics", headers=AUTH, query_string=query)

    assert response.status_code == 400
    assert detail in response.json["detail"]
