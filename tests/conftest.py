"""Shared fixtures: one provider emulator per session (reset per test), a fresh SQLite store and an
``LLMService`` wired to the emulator through LiteLLM's real HTTP clients.

Every response the suite gets from a documented route, from any app it builds, is checked against that app's
published OpenAPI document (``tests.published_contract``): a mismatch fails the test that made the request.
``tests/test_contracts.py`` drives every documented operation, so each is checked whatever else runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# A developer's .env in the checkout must not reach the apps and subprocesses the tests start.
os.environ["DJOBEA_DOTENV"] = "0"
# Tests must never reach a real provider: no real key may leak in from the developer's shell.
for _name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
    os.environ.pop(_name, None)

import pytest  # noqa: E402

from bot.llm import LLMService, load_router_config  # noqa: E402
from bot.sandbox import ProviderEmulator  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.published_contract import WATCH  # noqa: E402
from tests.support import provider_env_for, write_router_config  # noqa: E402


@pytest.fixture(autouse=True)
def responses_keep_to_the_published_document() -> Iterator[None]:
    """Fail the test if a response it got (in setup, call or teardown) breaks the app's OpenAPI document."""
    start = len(WATCH.mismatches)
    yield
    found = WATCH.mismatches[start:]
    if found:
        pytest.fail("responses that break the published OpenAPI document:\n  " + "\n  ".join(found), pytrace=False)


@pytest.fixture(scope="session")
def session_emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(session_emulator: ProviderEmulator) -> Iterator[ProviderEmulator]:
    session_emulator.reset()
    yield session_emulator
    session_emulator.reset()


@pytest.fixture
def provider_env(emulator: ProviderEmulator) -> dict[str, str]:
    return provider_env_for(emulator)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bot.db")


@pytest.fixture
def make_llm(provider_env: dict[str, str], store: Store, tmp_path: Path):
    """Build an LLMService on the test store; keyword arguments override config (see write_router_config)."""

    def make(clock=None, env: dict[str, str] | None = None, **overrides: Any) -> LLMService:
        path = write_router_config(tmp_path, **overrides) if overrides else None
        setup = load_router_config(path, env or provider_env)
        return LLMService(setup, store, clock) if clock else LLMService(setup, store)

    return make


@pytest.fixture
def llm(make_llm) -> LLMService:
    return make_llm()
