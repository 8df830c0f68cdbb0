"""Alerts on state transitions only, de-duplicated across processes, with advice, to every sink."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bot.admin.alert_sinks import AlertSinks
from bot.admin.alerts import AlertDispatcher
from bot.admin.scheduler import alert_dispatcher
from bot.admin.settings import AdminSettings
from bot.llm import AllProvidersFailed
from bot.services import Services
from bot.store import Store
from tests.admin.conftest import AlertReceiver

CHAT = [{"role": "user", "content": "Ma porte ne ferme plus"}]


def ask(services: Services) -> str | None:
    try:
        return services.llm.service.complete(CHAT).provider
    except AllProvidersFailed:
        return None


@pytest.fixture
def settings(alert_receiver: AlertReceiver) -> AdminSettings:
    return AdminSettings(alert_webhook_url=alert_receiver.url, admin_whatsapp_number="+237600000000")


def kinds(receiver: AlertReceiver) -> list[tuple[str, str | None]]:
    return [(a["kind"], a["provider"]) for a in receiver.received]


def test_alerts_are_sent_once_per_transition(
    services: Services, emulator, alert_receiver: AlertReceiver, settings: AdminSettings
) -> None:
    whatsapp: list[str] = []
    alerts = alert_dispatcher(services.llm.service, settings, whatsapp.append)
    emulator.set_fault("claude", "credit_exhausted")

    ask(services)  # claude benched
    alerts.run_once()
    ask(services)  # benched: not even called, no new transition
    services.llm.service.probe("claude")  # a failing probe keeps it benched
    alerts.run_once()
    alerts.run_once()

    assert kinds(alert_receiver) == [("benched", "claude")]
    benched = alert_receiver.received[0]
    assert "credit balance is too low" in benched["message"]
    assert "top up at https://console.anthropic.com/settings/billing" in benched["advice"]
    assert benched["text"].startswith("[Djobea] claude benched")
    assert whatsapp == [benched["text"]]

    emulator.clear_fault("claude")
    services.llm.service.probe("claude")
    alerts.run_once()
    alerts.run_once()

    assert kinds(alert_receiver) == [("benched", "claude"), ("recovered", "claude")]
    assert len(whatsapp) == 2


def test_all_down_and_all_recovered(
    services: Services, emulator, alert_receiver: AlertReceiver, settings: AdminSettings
) -> None:
    alerts = alert_dispatcher(services.llm.service, settings)
    for provider in ("claude", "gemini", "openai"):
        emulator.set_fault(provider, "auth_failed")
    assert ask(services) is None
    alerts.run_once()

    assert kinds(alert_receiver) == [
        ("benched", "claude"),
        ("benched", "gemini"),
        ("benched", "openai"),
        ("all_down", None),
    ]
    assert "refused the API key" in alert_receiver.received[1]["advice"]
    assert "aistudio.google.com/apikey" in alert_receiver.received[1]["advice"]

    emulator.clear_fault("openai")
    services.llm.service.probe("openai")
    emulator.clear_fault("gemini")
    services.llm.service.probe("gemini")
    alerts.run_once()

    assert kinds(alert_receiver)[4:] == [("recovered", "openai"), ("all_recovered", "openai"), ("recovered", "gemini")]


def test_two_processes_never_send_an_alert_twice(
    services: Services, emulator, alert_receiver: AlertReceiver, settings: AdminSettings, tmp_path: Path
) -> None:
    emulator.set_fault("claude", "credit_exhausted")
    ask(services)
    service = services.llm.service
    names = [d.name for d in service.deployments]
    families = {d.name: d.family for d in service.deployments}
    # Each "process" has its own connection to the shared file, as a gunicorn worker or the clock would.
    dispatchers = [AlertDispatcher(Store(tmp_path / "bot.db"), names, families, AlertSinks(settings)) for _ in range(4)]
    start = threading.Barrier(len(dispatchers))

    def run(dispatcher: AlertDispatcher) -> None:
        start.wait()
        dispatcher.run_once()

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert kinds(alert_receiver) == [("benched", "claude")]
    [row] = services.store.db.query("select * from admin_alerts")
    assert (row["delivery"], row["attempts"], row["sinks_done"]) == ("delivered", 1, "log,webhook")


def test_a_failed_webhook_is_retried_without_repeating_the_other_sinks(
    services: Services, emulator, alert_receiver: AlertReceiver, settings: AdminSettings, caplog
) -> None:
    now = [1_000.0]
    whatsapp: list[str] = []
    alerts = alert_dispatcher(services.llm.service, settings, whatsapp.append, clock=lambda: now[0])
    alert_receiver.fail_next = 1
    emulator.set_fault("claude", "credit_exhausted")
    ask(services)

    with caplog.at_level(logging.WARNING, logger="bot.alerts"):
        assert alerts.run_once() == 0
        assert alerts.run_once() == 0  # backing off: not retried yet
        now[0] += 60
        assert alerts.run_once() == 1

    assert kinds(alert_receiver) == [("benched", "claude")]
    assert len(whatsapp) == 1
    assert len([r for r in caplog.records if r.getMessage().startswith("ALERT benched")]) == 1


def test_whatsapp_is_skipped_with_a_log_line_when_no_sender_is_wired(services: Services, emulator, caplog) -> None:
    alerts = alert_dispatcher(services.llm.service, AdminSettings(admin_whatsapp_number="+237600000000"))
    emulator.set_fault("claude", "credit_exhausted")
    ask(services)

    with caplog.at_level(logging.INFO, logger="bot.alerts"):
        assert alerts.run_once() == 1

    messages = [r.getMessage() for r in caplog.records]
    assert any("no WhatsApp sender is wired" in m for m in messages)
    assert any(m.startswith("ALERT benched: [Djobea] claude benched") for m in messages)
