"""Fixtures of the WhatsApp tests: an app on a fresh database whose providers and Twilio are the session
emulator (LiteLLM's and twilio's real HTTP clients), a fake clock and recorded sleeps for the worker and
sender, Twilio-signed form posts, and a loopback server for callbacks and subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.sandbox import ProviderEmulator
from tests.support import Harness, LiveServer, harnesses


@pytest.fixture
def make_harness(
    emulator: ProviderEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Build an app (same database on every call, like a restart); keyword arguments override env values."""
    with harnesses(emulator, provider_env, tmp_path) as make:
        yield make


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    """Serve an app on 127.0.0.1 (Twilio status callbacks from the emulator reach it over real HTTP)."""
    server = LiveServer()
    yield server
    server.stop()
