"""Fixtures of the media tests: an app on a fresh database whose providers, Twilio API and Twilio media URLs are
the session emulator (LiteLLM's, twilio's and httpx's real HTTP clients), as in ``tests/whatsapp``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import ProviderEmulator
from bot.sandbox.scripted_model import djobea_model_reply
from bot.web import create_app, services_of
from tests.support import ACCOUNT_SID, AUTH_TOKEN, FakeClock, Harness, twilio_env, write_router_config


@pytest.fixture
def make_harness(
    emulator: ProviderEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Build an app on ``tmp_path/bot.db``; keyword arguments override env values."""
    built: list[Harness] = []
    clock = FakeClock()
    router_config = write_router_config(tmp_path, failures_before_cooldown=1000)

    def make(responder: Any = djobea_model_reply, **env: str) -> Harness:
        emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
        emulator.set_responder(None, responder)
        sleeps: list[float] = []
        app = create_app(
            {
                "DATABASE_PATH": str(tmp_path / "bot.db"),
                "ROUTER_CONFIG": str(router_config),
                "PROVIDER_ENV": {**provider_env, **twilio_env(emulator), "MEDIA_FETCH_TIMEOUT_S": "1", **env},
                "WHATSAPP_CLOCK": clock,
                "WHATSAPP_SLEEP": sleeps.append,
            }
        )
        harness = Harness(app, app.test_client(), services_of(app).whatsapp, emulator, clock, sleeps)
        built.append(harness)
        return harness

    yield make
    for harness in built:
        harness.runtime.stop_workers()
        harness.app.extensions["djobea"].llm.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
