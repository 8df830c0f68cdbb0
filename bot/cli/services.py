"""What a command opens before it works: the shared store and this process's LLM runtime.

Every command builds them the same way as the web app (``AppServices``), and fails the same way: a
configuration problem prints ``configuration error: ...`` and exits with status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.llm import LLMError
from bot.llm.factory import open_llm_runtime
from bot.settings import Settings
from bot.store import Store
from bot.web import AppServices

EXIT_CONFIG = 2
# Settings classes of every area raise ValueError subclasses naming the bad variable.
CONFIG_ERRORS = (LLMError, ValueError)


def open_services(env: Mapping[str, str] | None = None, database_path: str | Path | None = None) -> AppServices:
    """The store (``DATABASE_PATH`` unless given) and the LLM runtime, without a Flask app or its workers."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    store = Store(database_path or settings.database_path)
    llm = open_llm_runtime(store, settings.router_config_path, env, settings.sandbox_url)
    return AppServices(settings=settings, env=env, store=store, llm=llm)


def configuration_error(exc: Exception) -> int:
    print(f"configuration error: {exc}", file=sys.stderr)
    return EXIT_CONFIG
