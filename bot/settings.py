"""Process settings read from the environment once at start-up (secrets and URLs stay out of code).

DATABASE_PATH           the SQLite file every process shares (default instance/bot.db); a path that
                        cannot hold it is refused when the store opens (``bot.store.StoreOpenError``)
ROUTER_CONFIG           the router config file (default router_config/providers.yaml), checked by
                        ``bot.llm.load_router_config``
SANDBOX_EMULATOR_URL    in sandbox mode, an already running provider emulator (``python -m bot.sandbox.emulator``)
                        instead of one per process: an http:// or https:// URL with a host
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A process setting has a value we cannot use; the message names the variable. Raised at start-up by
    ``Settings.from_env``: the CLI prints it as a configuration error (exit 2), ``create_app`` lets it through."""


@dataclass(frozen=True)
class Settings:
    database_path: Path
    router_config_path: Path | None  # None = router_config/providers.yaml
    sandbox_url: str | None  # an already running provider emulator to use in sandbox mode

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_path=Path(env.get("DATABASE_PATH") or "instance/bot.db"),
            router_config_path=Path(env["ROUTER_CONFIG"]) if env.get("ROUTER_CONFIG") else None,
            sandbox_url=_http_url(env, "SANDBOX_EMULATOR_URL"),
        )


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    """``env[name]`` when it is an http(s) URL with a host; None when unset. Anything else would only
    surface later as every provider call failing, so it stops the process here."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name}: must be an http:// or https:// URL with a host, got {raw!r}")
    return raw


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    minimum: float,
    integer: bool = False,
    error: type[ValueError] = SettingsError,
) -> float:
    """The number in ``env[name]`` (``default`` when unset or blank), else ``error`` naming the variable.

    Every area's settings read their numbers through this one function, raising their own error class.
    """
    raw = env.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise error(f"{name} must be {kind}, got {raw!r}") from None
    if not math.isfinite(value):  # nan passes every comparison; inf would mean "no timeout" or "never"
        raise error(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise error(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value
