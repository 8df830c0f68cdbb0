"""Loads ``router_config/*.yaml`` (LiteLLM's config format) into validated deployments and policy.

Configuration is data: which providers exist, their order, models, timeouts and the reliability
policy. Any problem stops start-up with a ``RouterConfigError`` naming the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from bot.llm.errors import RouterConfigError

# The checkout's router_config/ first; an installed package carries a copy as bot/router_config/ (setup.py).
_CHECKOUT_CONFIG = Path(__file__).resolve().parents[2] / "router_config" / "providers.yaml"
_PACKAGED_CONFIG = Path(__file__).resolve().parents[1] / "router_config" / "providers.yaml"
DEFAULT_CONFIG_PATH = _CHECKOUT_CONFIG if _CHECKOUT_CONFIG.is_file() else _PACKAGED_CONFIG
ENV_PREFIX = "os.environ/"
# What a request may need of a deployment, and the model_info key that overrides LiteLLM's knowledge of it.
CAPABILITY_KEYS = {"vision": "supports_vision", "audio": "supports_audio_input"}
# LiteLLM's own model_info "mode" of a speech-to-text deployment: it answers transcriptions, never chat.
TRANSCRIPTION_MODE = "audio_transcription"


@dataclass(frozen=True)
class Reliability:
    """Djobea's policy knobs (the ``djobea:`` section)."""

    request_deadline_s: float = 25.0
    rate_limit_cooldown_s: float = 30.0
    failures_before_cooldown: int = 2
    cooldown_base_s: float = 15.0
    cooldown_max_s: float = 600.0
    trial_lease_s: float = 30.0  # one process probes a provider whose cooldown is over; outlasts one probe
    min_attempt_s: float = 0.2  # below this much deadline left, starting another attempt is pointless
    callback_wait_s: float = 2.0  # how long to wait for LiteLLM's logging thread to record an attempt
    # Calls in flight to one deployment from one process (0: no cap). A call over it waits for a slot at most
    # half of what is left of its deadline, else that provider is skipped as busy: many worker threads then stay
    # within a provider's concurrency limit instead of drawing a storm of 429s.
    max_parallel_requests: int = 0


@dataclass(frozen=True)
class Deployment:
    """One provider deployment: a model behind one key, called by its ``name`` through the Router."""

    name: str
    family: str  # LiteLLM provider prefix: anthropic, gemini, openai, mistral, ...
    model: str
    order: int
    timeout_s: float
    api_base: str | None
    api_key: str = field(repr=False)
    litellm_entry: dict[str, Any] = field(repr=False, compare=False)
    mode: str = "chat"  # model_info.mode: "chat", or "audio_transcription" for a speech-to-text model
    # model_info's supports_vision / supports_audio_input, by capability; absent: LiteLLM's model map decides
    capability_overrides: dict[str, bool] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RouterSetup:
    source: Path
    deployments: tuple[Deployment, ...]  # chat deployments, in priority order
    left_out: dict[str, str]  # deployment name -> why it is absent (e.g. key not set)
    router_settings: dict[str, Any]
    reliability: Reliability
    # Speech-to-text deployments (model_info.mode: audio_transcription), in priority order: never asked to chat.
    transcribers: tuple[Deployment, ...] = ()

    def router_kwargs(self) -> dict[str, Any]:
        # Transcribers stay out: LiteLLM 1.110's Router has no synchronous transcription (LLMService.transcribe).
        return {"model_list": [d.litellm_entry for d in self.deployments], **self.router_settings}

    def deployment(self, name: str) -> Deployment:
        for deployment in self.deployments + self.transcribers:
            if deployment.name == name:
                return deployment
        raise KeyError(name)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(d.api_key for d in self.deployments + self.transcribers)


def load_router_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> RouterSetup:
    """Read and validate a router config; ``env`` (default ``os.environ``) resolves ``os.environ/X``."""
    source = Path(path) if path else DEFAULT_CONFIG_PATH
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RouterConfigError(f"{source}: cannot read router config ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise RouterConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RouterConfigError(f"{source}: the top level must be a mapping with model_list")
    unknown = set(raw) - {"model_list", "router_settings", "djobea", "litellm_settings", "general_settings"}
    if unknown:
        raise RouterConfigError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}")
    model_list = raw.get("model_list")
    if not isinstance(model_list, list) or not model_list:
        raise RouterConfigError(f"{source}: model_list: must be a non-empty list of deployments")

    deployments: list[Deployment] = []
    left_out: dict[str, str] = {}
    for index, entry in enumerate(model_list):
        where = f"{source}: model_list[{index}]"
        deployment, absent_reason = _deployment(entry, where, env)
        if deployment is None:
            left_out[str(entry.get("model_name"))] = absent_reason
            continue
        if any(d.name == deployment.name for d in deployments):
            raise RouterConfigError(f"{where}.model_name: {deployment.name!r} is used twice")
        deployments.append(deployment)
    deployments.sort(key=lambda d: d.order)
    transcribers = tuple(d for d in deployments if d.mode == TRANSCRIPTION_MODE)

    router_settings = raw.get("router_settings") or {}
    if not isinstance(router_settings, dict):
        raise RouterConfigError(f"{source}: router_settings: must be a mapping")
    return RouterSetup(
        source=source,
        deployments=tuple(d for d in deployments if d.mode != TRANSCRIPTION_MODE),
        transcribers=transcribers,
        left_out=left_out,
        router_settings=dict(router_settings),
        reliability=_reliability(raw.get("djobea") or {}, f"{source}: djobea"),
    )


def _deployment(entry: object, where: str, env: Mapping[str, str]) -> tuple[Deployment | None, str]:
    if not isinstance(entry, dict):
        raise RouterConfigError(f"{where}: must be a mapping with model_name and litellm_params")
    name = entry.get("model_name")
    if not isinstance(name, str) or not name.strip():
        raise RouterConfigError(f"{where}.model_name: missing or not a string")
    params = entry.get("litellm_params")
    if not isinstance(params, dict):
        raise RouterConfigError(f"{where}.litellm_params: missing or not a mapping")
    model = params.get("model")
    if not isinstance(model, str) or "/" not in model:
        raise RouterConfigError(f"{where}.litellm_params.model: must be 'provider/model', got {model!r}")

    resolved: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            variable = value[len(ENV_PREFIX) :]
            if env.get(variable):
                resolved[key] = env[variable]
            elif key == "api_key":
                return None, f"{variable} is not set"
            elif key != "api_base":  # an unset base means the provider's real endpoint
                raise RouterConfigError(f"{where}.litellm_params.{key}: environment variable {variable} is not set")
        else:
            resolved[key] = value
    if not resolved.get("api_key"):
        return None, "no api_key"

    order = resolved.get("order", 100)
    timeout = resolved.get("timeout", 25)
    if not isinstance(order, int):
        raise RouterConfigError(f"{where}.litellm_params.order: must be an integer, got {order!r}")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise RouterConfigError(f"{where}.litellm_params.timeout: must be a positive number, got {timeout!r}")
    model_info = entry.get("model_info") or {}
    if not isinstance(model_info, dict):
        raise RouterConfigError(f"{where}.model_info: must be a mapping")
    model_info = dict(model_info)
    model_info.setdefault("id", name)
    mode = model_info.get("mode", "chat")
    if mode not in ("chat", TRANSCRIPTION_MODE):
        raise RouterConfigError(f"{where}.model_info.mode: must be chat or {TRANSCRIPTION_MODE}, got {mode!r}")
    overrides: dict[str, bool] = {}
    for capability, key in CAPABILITY_KEYS.items():
        if key in model_info:
            if not isinstance(model_info[key], bool):
                raise RouterConfigError(f"{where}.model_info.{key}: must be true or false, got {model_info[key]!r}")
            overrides[capability] = model_info[key]
    # The overrides stay ours: LiteLLM's Router writes a deployment's model_info into its process-wide model map
    # under the backend model's key, so there one deployment's override would change every deployment of that model.
    handed = {k: v for k, v in model_info.items() if k not in CAPABILITY_KEYS.values()}
    litellm_entry = {"model_name": name, "litellm_params": resolved, "model_info": handed}
    return Deployment(
        name=name,
        family=model.split("/", 1)[0],
        model=model,
        order=order,
        timeout_s=float(timeout),
        api_base=resolved.get("api_base"),
        api_key=resolved["api_key"],
        litellm_entry=litellm_entry,
        mode=mode,
        capability_overrides=overrides,
    ), ""


def _reliability(section: object, where: str) -> Reliability:
    if not isinstance(section, dict):
        raise RouterConfigError(f"{where}: must be a mapping")
    known = {f.name: f for f in fields(Reliability)}
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key not in known:
            raise RouterConfigError(f"{where}.{key}: unknown setting (known: {', '.join(sorted(known))})")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise RouterConfigError(f"{where}.{key}: must be a non-negative number, got {value!r}")
        values[key] = int(value) if known[key].type == "int" else float(value)
    return Reliability(**values)
