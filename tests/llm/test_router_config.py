"""router_config: LiteLLM's format, validated at start-up with errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.llm import LLMService, RouterConfigError, load_router_config
from bot.llm.router_config import DEFAULT_CONFIG_PATH


def shipped_config() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def write(tmp_path: Path, config: object) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config), encoding="utf-8")
    return path


def test_shipped_config_orders_claude_gemini_openai(provider_env) -> None:
    setup = load_router_config(env=provider_env)
    assert [d.name for d in setup.deployments] == ["claude", "gemini", "openai"]
    assert setup.router_settings["disable_cooldowns"] is True


def test_provider_without_key_is_absent(provider_env) -> None:
    env = {k: v for k, v in provider_env.items() if k != "GEMINI_API_KEY"}
    setup = load_router_config(env=env)
    assert [d.name for d in setup.deployments] == ["claude", "openai"]
    assert setup.left_out == {"gemini": "GEMINI_API_KEY is not set"}


def test_unset_base_means_the_real_endpoint(provider_env) -> None:
    env = {k: v for k, v in provider_env.items() if not k.endswith("_API_BASE")}
    setup = load_router_config(env=env)
    assert all(d.api_base is None for d in setup.deployments)
    assert "api_base" not in setup.deployments[0].litellm_entry["litellm_params"]


def test_a_fourth_deployment_is_one_yaml_entry(tmp_path: Path, provider_env, store, emulator) -> None:
    config = shipped_config()
    # Mistral speaks the OpenAI chat format: the emulator answers it on its OpenAI endpoint.
    config["model_list"].insert(
        0,
        {
            "model_name": "mistral",
            "litellm_params": {
                "model": "mistral/mistral-small-latest",
                "api_key": "os.environ/MISTRAL_API_KEY",
                "api_base": "os.environ/MISTRAL_API_BASE",
                "order": 0,
            },
        },
    )
    env = {**provider_env, "MISTRAL_API_KEY": "mistral-test-key", "MISTRAL_API_BASE": emulator.api_base("openai")}
    llm = LLMService(load_router_config(write(tmp_path, config), env), store)
    assert [d.name for d in llm.deployments] == ["mistral", "claude", "gemini", "openai"]

    completion = llm.complete([{"role": "user", "content": "hello"}])

    assert (completion.provider, completion.model) == ("mistral", "mistral/mistral-small-latest")
    assert emulator.calls("openai")[0].model == "mistral-small-latest"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.pop("model_list"), "model_list: must be a non-empty list"),
        (lambda c: c["model_list"][1].pop("litellm_params"), "model_list[1].litellm_params: missing"),
        (lambda c: c["model_list"][0]["litellm_params"].update(model="claude"), "model_list[0].litellm_params.model"),
        (lambda c: c["model_list"][2]["litellm_params"].update(timeout=-1), "model_list[2].litellm_params.timeout"),
        (lambda c: c["model_list"][1].update(model_name="claude"), "model_list[1].model_name: 'claude' is used twice"),
        (lambda c: c["djobea"].update(request_deadline=5), "djobea.request_deadline: unknown setting"),
        (lambda c: c["djobea"].update(cooldown_base_s="soon"), "djobea.cooldown_base_s: must be a non-negative"),
        (lambda c: c.update(routers={}), "unknown top-level key 'routers'"),
        (lambda c: c["model_list"][0]["litellm_params"].update(region="os.environ/NO_SUCH_VAR"), "NO_SUCH_VAR"),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path: Path, provider_env, mutate, message: str) -> None:
    config = shipped_config()
    mutate(config)
    path = write(tmp_path, config)
    with pytest.raises(RouterConfigError) as raised:
        load_router_config(path, provider_env)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_unreadable_and_malformed_files(tmp_path: Path, provider_env) -> None:
    with pytest.raises(RouterConfigError, match="cannot read router config"):
        load_router_config(tmp_path / "missing.yaml", provider_env)
    with pytest.raises(RouterConfigError, match="not valid YAML"):
        load_router_config(write(tmp_path, "model_list: [\n  - {model_name: x"), provider_env)


def test_unknown_router_setting_is_refused_at_start(tmp_path: Path, provider_env, store) -> None:
    config = shipped_config()
    config["router_settings"]["num_retriez"] = 3
    with pytest.raises(RouterConfigError, match="router_settings"):
        LLMService(load_router_config(write(tmp_path, config), provider_env), store)


def test_no_usable_deployment_is_a_clear_error(store) -> None:
    with pytest.raises(RouterConfigError, match="no usable deployment.*ANTHROPIC_API_KEY is not set"):
        LLMService(load_router_config(env={}), store)
