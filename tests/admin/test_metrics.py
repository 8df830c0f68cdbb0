"""``GET /metrics``: Prometheus text computed from SQLite, the same from every worker, monotonic."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from bot.admin.call_rollup import roll_up
from bot.admin.retention import delete_old_rows
from bot.llm import AllProvidersFailed
from bot.web import AppServices

CHAT = [{"role": "user", "content": "Le courant a sauté"}]


def scrape(app: Flask) -> dict[tuple[str, tuple], float]:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def traffic(services: AppServices, emulator) -> None:
    services.llm.service.complete(CHAT)  # claude answers
    emulator.set_fault("claude", "credit_exhausted")
    emulator.set_fault("gemini", "server_error", times=1)
    services.llm.service.complete(CHAT)  # claude benched; gemini fails, retries, answers


def test_metrics_count_calls_failures_latency_and_states(app: Flask, services: AppServices, emulator) -> None:
    traffic(services, emulator)

    samples = scrape(app)

    attempts = "djobea_llm_attempts_total"
    assert value(samples, attempts, provider="claude", purpose="chat", outcome="success") == 1
    assert value(samples, attempts, provider="claude", purpose="chat", outcome="failure") == 1
    assert value(samples, attempts, provider="gemini", purpose="chat", outcome="success") == 1
    assert value(samples, "djobea_llm_failures_total", provider="claude", error_kind="credit_exhausted") == 1
    assert value(samples, "djobea_llm_failures_total", provider="gemini", error_kind="server_error") == 1
    histogram = "djobea_llm_attempt_latency_seconds"
    assert value(samples, histogram + "_count", provider="gemini", outcome="success") == 1
    assert value(samples, histogram + "_bucket", provider="gemini", outcome="success", le="+Inf") == 1
    assert value(samples, histogram + "_bucket", provider="gemini", outcome="success", le="30.0") == 1
    assert 0 < value(samples, histogram + "_sum", provider="gemini", outcome="success") < 30
    assert value(samples, "djobea_llm_provider_state", provider="claude", state="benched") == 1
    assert value(samples, "djobea_llm_provider_state", provider="claude", state="healthy") == 0
    assert value(samples, "djobea_llm_provider_usable", provider="claude") == 0
    assert value(samples, "djobea_llm_provider_usable", provider="openai") == 1
    assert value(samples, "djobea_llm_tokens_total", provider="claude", direction="output") > 0
    assert value(samples, "djobea_llm_cost_usd_total", provider="gemini") > 0


def test_every_worker_reports_the_same_numbers(make_app, app: Flask, services: AppServices, emulator) -> None:
    other_worker = make_app()  # a second app on the same database, as another gunicorn worker would be
    traffic(services, emulator)

    assert scrape(app) == scrape(other_worker)
    assert (
        value(scrape(other_worker), "djobea_llm_attempts_total", provider="claude", purpose="chat", outcome="success")
        == 1
    )


def test_counters_never_go_down_when_retention_deletes_old_rows(app: Flask, services: AppServices, emulator) -> None:
    traffic(services, emulator)
    for provider in ("claude", "gemini", "openai"):
        emulator.set_fault(provider, "auth_failed")
    with pytest.raises(AllProvidersFailed):
        services.llm.service.complete(CHAT)
    before = scrape(app)
    rows = services.store.db["llm_calls"].count
    later = time.time() + 400 * 86400  # a year later, every row is past the 90-day retention

    deleted = delete_old_rows(services.store, 90, clock=lambda: later)

    assert deleted["llm_calls"] == rows > 0
    assert services.store.db["llm_calls"].count == 0
    kept = {row["provider"]: row["to_state"] for row in services.store.db.query("select * from provider_events")}
    assert kept == {"claude": "benched", "gemini": "benched", "openai": "benched"}  # still says the state
    after = scrape(app)
    counters = {k: v for k, v in before.items() if k[0].endswith(("_total", "_count", "_bucket", "_sum"))}
    assert counters and all(after[k] == v for k, v in counters.items())
    assert roll_up(services.store, clock=lambda: later) == later - 600  # idempotent: nothing counted twice
    assert scrape(app) == after
