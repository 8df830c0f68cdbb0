"""WhatsApp settings are checked at start-up, with an error naming the variable."""

from __future__ import annotations

import pytest

from bot.whatsapp.settings import WhatsAppSettings, WhatsAppSettingsError


@pytest.mark.parametrize(
    "name",
    ["INBOUND_LEASE_S", "INBOUND_HEARTBEAT_S", "TWILIO_TIMEOUT_S", "WHATSAPP_WINDOW_HOURS", "WHATSAPP_WORKER_THREADS"],
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_numbers_that_are_not_finite_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(WhatsAppSettingsError, match=name):
        WhatsAppSettings.from_env({name: value})


def test_defaults_and_the_error_limit() -> None:
    settings = WhatsAppSettings.from_env({"INBOUND_MAX_ERRORS": "3"})

    assert (settings.timeout_s, settings.window_s, settings.max_errors) == (10.0, 86400, 3)
    with pytest.raises(WhatsAppSettingsError, match="INBOUND_MAX_ERRORS"):
        WhatsAppSettings.from_env({"INBOUND_MAX_ERRORS": "0"})


def test_a_short_lease_renewed_three_times_per_lease_by_default() -> None:
    settings = WhatsAppSettings.from_env({})
    assert (settings.lease_s, settings.heartbeat_s) == (15.0, 5.0)  # a dead worker's message waits 15 s at most

    tuned = WhatsAppSettings.from_env({"INBOUND_LEASE_S": "6"})
    assert (tuned.lease_s, tuned.heartbeat_s) == (6.0, 2.0)


@pytest.mark.parametrize(
    "env",
    [
        {"INBOUND_HEARTBEAT_S": "8"},  # more than half of the default 15 s lease
        {"INBOUND_LEASE_S": "4", "INBOUND_HEARTBEAT_S": "3"},
        {"INBOUND_HEARTBEAT_S": "0"},
    ],
)
def test_a_heartbeat_that_cannot_keep_the_lease_alive_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(WhatsAppSettingsError, match="INBOUND_HEARTBEAT_S"):
        WhatsAppSettings.from_env(env)
