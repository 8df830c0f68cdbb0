"""Fixtures of the media tests: an app on a fresh database whose providers, Twilio API and Twilio media URLs are
the session emulator (LiteLLM's, twilio's and httpx's real HTTP clients), as in ``tests/whatsapp``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.sandbox import ProviderEmulator
from tests.support import Harness, harnesses


@pytest.fixture
def make_harness(
    emulator: ProviderEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Build an app on ``tmp_path/bot.db``; keyword arguments override env values."""
    with harnesses(emulator, provider_env, tmp_path, MEDIA_FETCH_TIMEOUT_S="1") as make:
        yield make


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
