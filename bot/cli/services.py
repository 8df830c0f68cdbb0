"""What a command opens before it works: the shared store and this process's LLM runtime.

Every command builds them the same way as the web app (``AppServices``), and fails the same way: a
configuration problem prints ``configuration error: ...`` and exits with status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.admin.settings import AdminSettings
from bot.llm import LLMError
from bot.llm.factory import open_llm_runtime
from bot.settings import Settings
from bot.store import Store, StoreOpenError
from bot.web import AppServices

EXIT_CONFIG = 2
# Settings classes of every area raise ValueError subclasses naming the bad variable; the store names a
# DATABASE_PATH it cannot open; the LLM layer names the router config file and key.
CONFIG_ERRORS = (LLMError, ValueError, StoreOpenError)


def open_services(env: Mapping[str, str] | None = None, database_path: str | Path | None = None) -> AppServices:
    """The store (``DATABASE_PATH`` unless given) and the LLM runtime, without a Flask app or its workers.

    Process and admin settings are checked before anything is opened or started: a bad ADMIN_API_TOKEN
    stops every command as it stops gunicorn, and no sandbox emulator is started only to be refused.
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    AdminSettings.from_env(env)
    store = Store(database_path or settings.database_path)
    llm = open_llm_runtime(store, settings.router_config_path, env, settings.sandbox_url)
    return AppServices(settings=settings, env=env, store=store, llm=llm)


def configuration_error(exc: Exception) -> int:
    print(f"configuration error: {exc}", file=sys.stderr)
    return EXIT_CONFIG
