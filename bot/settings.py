"""Process settings read from the environment once at start-up (secrets and URLs stay out of code)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


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
            sandbox_url=env.get("SANDBOX_EMULATOR_URL") or None,
        )
