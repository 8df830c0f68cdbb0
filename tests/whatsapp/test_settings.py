"""WhatsApp settings are checked at start-up, with an error naming the variable."""

from __future__ import annotations

import pytest

from bot.whatsapp.settings import WhatsAppSettings, WhatsAppSettingsError


@pytest.mark.parametrize(
    "name", ["INBOUND_LEASE_S", "TWILIO_TIMEOUT_S", "WHATSAPP_WINDOW_HOURS", "WHATSAPP_WORKER_THREADS"]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_numbers_that_are_not_finite_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(WhatsAppSettingsError, match=name):
        WhatsAppSettings.from_env({name: value})


def test_defaults_and_the_error_limit() -> None:
    settings = WhatsAppSettings.from_env({"INBOUND_MAX_ERRORS": "3"})

    assert (settings.lease_s, settings.timeout_s, settings.window_s, settings.max_errors) == (120.0, 10.0, 86400, 3)
    with pytest.raises(WhatsAppSettingsError, match="INBOUND_MAX_ERRORS"):
        WhatsAppSettings.from_env({"INBOUND_MAX_ERRORS": "0"})
