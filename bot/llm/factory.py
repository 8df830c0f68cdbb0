"""Builds the process's ``LLMService`` from settings, falling back to the sandbox when no key is set.

Sandbox mode: with no provider key in the environment, every deployment is pointed at the local
provider emulator (``bot.sandbox``), so the whole product runs, and is said to run, without keys.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.llm.router_config import DEFAULT_CONFIG_PATH, ENV_PREFIX, RouterSetup, load_router_config
from bot.llm.service import LLMService
from bot.sandbox import ProviderEmulator
from bot.store import Store

log = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox-key-not-secret"
# The emulator's name for each LiteLLM provider family it speaks.
EMULATED_FAMILIES = {"anthropic": "claude", "gemini": "gemini", "openai": "openai"}


@dataclass
class LLMRuntime:
    service: LLMService
    sandbox: ProviderEmulator | None  # the emulator this process started, if any
    sandbox_url: str | None

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()


def open_llm_runtime(
    store: Store,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    sandbox_url: str | None = None,
) -> LLMRuntime:
    """The LLM service for this process: real providers when keys are set, else the sandbox."""
    env = os.environ if env is None else env
    setup = load_router_config(config_path, env)
    if setup.deployments:
        return LLMRuntime(LLMService(setup, store), None, None)

    emulator = None
    if sandbox_url is None:
        emulator = ProviderEmulator().start()
        sandbox_url = emulator.base_url
    setup = load_router_config(config_path, {**env, **sandbox_env(config_path, sandbox_url)})
    log.warning(
        "SANDBOX MODE: no provider API key is set, so %s answer from the local provider emulator at %s. "
        "Set ANTHROPIC_API_KEY / GEMINI_API_KEY / OPENAI_API_KEY to use real providers.",
        ", ".join(d.name for d in setup.deployments),
        sandbox_url,
    )
    return LLMRuntime(LLMService(setup, store), emulator, sandbox_url)


def sandbox_env(config_path: Path | None, emulator_url: str) -> dict[str, str]:
    """Environment values pointing every emulated deployment of the config at the emulator."""
    raw = yaml.safe_load(Path(config_path or DEFAULT_CONFIG_PATH).read_text(encoding="utf-8"))
    values: dict[str, str] = {}
    for entry in raw.get("model_list") or []:
        params = entry.get("litellm_params") or {}
        family = str(params.get("model", "")).split("/", 1)[0]
        if family not in EMULATED_FAMILIES:
            continue  # the emulator cannot speak for it: it stays absent in the sandbox
        for key, value in params.items():
            if not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
                continue
            if key == "api_key":
                values[value[len(ENV_PREFIX) :]] = SANDBOX_KEY
            elif key == "api_base":
                suffix = "/v1" if family == "openai" else ""
                values[value[len(ENV_PREFIX) :]] = emulator_url.rstrip("/") + suffix
    return values


__all__ = ["LLMRuntime", "RouterSetup", "open_llm_runtime", "sandbox_env"]
