"""``GET /metrics``: Prometheus text computed from SQLite, the same from every worker, monotonic.

LLM calls, the WhatsApp queues (inbound by state and the oldest pending message's age, outbound by status
and Twilio error code) and HTTP responses per route with their latency, all driven through the real app.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from bot.admin.call_rollup import roll_up
from bot.admin.retention import delete_old_rows
from bot.llm import AllProvidersFailed
from bot.sandbox.scripted_model import djobea_model_reply
from bot.services import Services
from bot.web import create_app, http_metrics, services_of
from bot.whatsapp.runtime import STATUS_CALLBACK_PATH
from tests.admin.conftest import AUTH
from tests.support import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, CUSTOMER, FakeClock, sign, twilio_env, wait_until

CHAT = [{"role": "user", "content": "Le courant a sauté"}]
HTTP = "djobea_http_"
LES = [*(repr(bound) for bound in http_metrics.LATENCY_BUCKETS_S), "+Inf"]


def scrape(app: Flask, http: bool = False) -> dict[tuple[str, tuple], float]:
    """Samples of ``/metrics``; HTTP families only with ``http`` (each scrape is itself a request they count)."""
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        if family.name.startswith(HTTP) and not http:
            continue
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def traffic(services: Services, emulator) -> None:
    services.llm.service.complete(CHAT)  # claude answers
    emulator.set_fault("claude", "credit_exhausted")
    emulator.set_fault("gemini", "server_error", times=1)
    services.llm.service.complete(CHAT)  # claude benched; gemini fails, retries, answers


def test_metrics_count_calls_failures_latency_and_states(app: Flask, services: Services, emulator) -> None:
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


def test_every_worker_reports_the_same_numbers(make_app, app: Flask, services: Services, emulator) -> None:
    other_worker = make_app()  # a second app on the same database, as another gunicorn worker would be
    traffic(services, emulator)

    assert scrape(app) == scrape(other_worker)
    assert (
        value(scrape(other_worker), "djobea_llm_attempts_total", provider="claude", purpose="chat", outcome="success")
        == 1
    )


def test_counters_never_go_down_when_retention_deletes_old_rows(app: Flask, services: Services, emulator) -> None:
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


# --- the WhatsApp queues ------------------------------------------------------------------------------------


def counting(app: Flask) -> Flask:
    """``app`` with its HTTP responses counted (a no-op once ``create_app`` installs it itself)."""
    if http_metrics.EXTENSION_KEY not in app.extensions:
        http_metrics.init_app(app)
    return app


@pytest.fixture
def make_whatsapp_app(tmp_path: Path, admin_env: dict[str, str], emulator):
    """Apps on one database with Twilio played by the emulator and a fake clock (like the WhatsApp tests)."""
    clock = FakeClock()
    built: list[Flask] = []
    emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    emulator.set_responder(None, djobea_model_reply)

    def make(**config: Any) -> Flask:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_PATH": str(tmp_path / "bot.db"),
                "PROVIDER_ENV": {**admin_env, **twilio_env(emulator)},
                "WHATSAPP_CLOCK": clock,
                "WHATSAPP_SLEEP": lambda seconds: None,
                **config,
            }
        )
        built.append(app)
        return counting(app)

    make.clock = clock  # type: ignore[attr-defined]
    yield make
    for app in built:
        services_of(app).whatsapp.stop_workers()
        services_of(app).llm.close()


def post_signed(app: Flask, path: str, form: dict[str, str]) -> Any:
    url = "http://localhost" + path
    return app.test_client().post(path, data=form, headers={"X-Twilio-Signature": sign(url, form)})


def whatsapp_message(body: str) -> dict[str, str]:
    sid = f"SM{uuid.uuid4().hex}"
    return {
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"whatsapp:{CUSTOMER}",
        "To": f"whatsapp:{BOT_NUMBER}",
        "Body": body,
        "NumMedia": "0",
    }


def test_queues_by_state_oldest_pending_age_and_twilio_63016(make_whatsapp_app) -> None:
    app = make_whatsapp_app()
    clock = make_whatsapp_app.clock
    runtime = services_of(app).whatsapp
    failures = "djobea_twilio_message_failures_total"
    assert value(scrape(app), failures, error_code="63016") == 0  # present before the first one, so it can rise

    assert post_signed(app, "/webhook/whatsapp", whatsapp_message("Bonjour, mon robinet fuit")).status_code == 200
    clock.advance(90)
    waiting = scrape(app)

    assert value(waiting, "djobea_inbound_messages", status="pending") == 1
    assert value(waiting, "djobea_inbound_messages", status="done") == 0
    assert ("djobea_inbound_messages", (("status", "failed"),)) in waiting  # every state has a series
    assert value(waiting, "djobea_inbound_oldest_pending_age_seconds") == 90
    assert ("djobea_inbound_spooled", ()) in waiting and value(waiting, "djobea_inbound_spooled") == 0

    assert runtime.worker.drain(timeout_s=30) == 1
    answered = scrape(app)

    assert value(answered, "djobea_inbound_messages", status="pending") == 0
    assert value(answered, "djobea_inbound_messages", status="done") == 1
    assert value(answered, "djobea_inbound_oldest_pending_age_seconds") == 0
    assert value(answered, "djobea_outbound_messages", status="queued", error_code="") == 1

    [sid] = [row[0] for row in runtime.store.db.execute("select twilio_sid from outbound_messages")]
    callback = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "63016", "AccountSid": ACCOUNT_SID}
    assert post_signed(app, STATUS_CALLBACK_PATH, callback).status_code == 204
    refused = scrape(app, http=True)

    assert value(refused, "djobea_outbound_messages", status="failed", error_code="63016") == 1
    assert value(refused, "djobea_outbound_messages", status="queued", error_code="") == 0
    assert value(refused, failures, error_code="63016") == 1
    responses = "djobea_http_responses_total"
    assert value(refused, responses, route="/webhook/whatsapp", method="POST", status="200") == 1
    assert value(refused, responses, route=STATUS_CALLBACK_PATH, method="POST", status="204") == 1


# --- HTTP responses and latency -------------------------------------------------------------------------------


def test_responses_by_route_method_and_status_with_latency(app: Flask) -> None:
    client = counting(app).test_client()
    for _ in range(2):
        assert client.get("/").status_code == 200
    assert client.post("/api/llm/providers/claude/disable", headers=AUTH, json={"by": "test"}).status_code == 200
    assert client.post("/api/llm/providers/gemini/disable", headers=AUTH, json={"by": "test"}).status_code == 200
    assert client.post("/api/llm/providers/nobody/disable", headers=AUTH, json={}).status_code == 404
    assert client.post("/api/llm/providers/claude/disable").status_code == 401
    assert client.post("/webhook/chat", json={"message": "Bonjour, mon robinet fuit"}).status_code == 200
    assert client.post("/webhook/chat", data="not json", content_type="application/json").status_code == 400
    for path in ("/wp-login.php", "/.env", f"/random/{uuid.uuid4().hex}"):
        assert client.get(path).status_code == 404
    assert client.open("/", method="BREW").status_code == 405

    samples = scrape(app, http=True)

    responses = "djobea_http_responses_total"
    assert value(samples, responses, route="/", method="GET", status="200") == 2
    providers = "/api/llm/providers/<name>/<action>"
    assert value(samples, responses, route=providers, method="POST", status="200") == 2
    assert value(samples, responses, route=providers, method="POST", status="404") == 1
    assert value(samples, responses, route=providers, method="POST", status="401") == 1
    assert value(samples, responses, route="/webhook/chat", method="POST", status="200") == 1
    assert value(samples, responses, route="/webhook/chat", method="POST", status="400") == 1
    assert value(samples, responses, route="<unmatched>", method="GET", status="404") == 3
    assert value(samples, responses, route="<unmatched>", method="OTHER", status="405") == 1
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith(HTTP)}
    assert routes == {"/", providers, "/webhook/chat", "<unmatched>"}  # rules, never raw paths
    duration = "djobea_http_request_duration_seconds"
    assert value(samples, duration + "_count", route="/", method="GET") == 2
    assert value(samples, duration + "_bucket", route="/", method="GET", le="+Inf") == 2
    assert value(samples, duration + "_bucket", route="/", method="GET", le="30.0") == 2
    assert 0 < value(samples, duration + "_sum", route="/", method="GET") < 2 * 30
    chat = [value(samples, duration + "_bucket", route="/webhook/chat", method="POST", le=le) for le in LES]
    assert chat == sorted(chat) and chat[-1] == 2  # cumulative buckets, every bound present
    assert value(samples, duration + "_count", route=providers, method="POST") == 4

    again = scrape(app, http=True)  # the first scrape was a request too

    assert value(again, responses, route="/metrics", method="GET", status="200") == 1
    assert value(again, responses, route="/", method="GET", status="200") == 2


def test_every_worker_reports_every_workers_requests(tmp_path: Path, admin_env: dict[str, str]) -> None:
    def worker(flush_every_s: float) -> Flask:  # another gunicorn worker: its own process state, the same file
        config = {"TESTING": True, "DATABASE_PATH": str(tmp_path / "bot.db"), "PROVIDER_ENV": admin_env}
        return counting(create_app({**config, "HTTP_METRICS_FLUSH_S": flush_every_s}))

    first, second = worker(0.05), worker(http_metrics.FLUSH_EVERY_S)
    for _ in range(3):
        first.test_client().get("/")
    second.test_client().get("/api/llm/health")

    root = ("djobea_http_responses_total", (("method", "GET"), ("route", "/"), ("status", "200")))

    def with_the_first_workers_requests() -> dict | None:
        samples = scrape(second, http=True)  # adds the second worker's own tallies at once
        return samples if samples.get(root) == 3 else None

    # Nobody scrapes the first worker: its flusher adds its tallies on its own.
    seen = wait_until(with_the_first_workers_requests, timeout=10, what="the first worker's requests")
    health = ("djobea_http_responses_total", (("method", "GET"), ("route", "/api/llm/health"), ("status", "200")))
    assert seen[health] == 1
    assert scrape(first, http=True)[root] == 3


# --- what the deploy/ files query -------------------------------------------------------------------------------


def test_alerts_and_dashboard_query_only_metrics_the_app_exposes(app: Flask) -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    used = set()
    for name in ("prometheus-alerts.yml", "grafana-dashboard.json"):
        used |= set(re.findall(r"\bdjobea_[a-z_]+", (deploy / name).read_text(encoding="utf-8")))
    response = counting(app).test_client().get("/metrics")
    families = {f.name: f.type for f in text_string_to_metric_families(response.get_data(as_text=True))}
    exposed = set(families)
    for name, kind in families.items():  # the sample names each family adds to its own
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(kind, ())
        exposed |= {name + suffix for suffix in suffixes}

    assert used and used <= exposed, sorted(used - exposed)
