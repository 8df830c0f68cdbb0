"""``python -m bot ask`` as a person runs it: sandbox with no keys, JSON shape, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import provider_env_for

REPO = Path(__file__).resolve().parents[1]
KEY_VARIABLES = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_ask_without_keys_answers_from_the_sandbox_and_says_so(tmp_path: Path) -> None:
    result = run_cli("ask", "--json", "Bonjour", env={"DATABASE_PATH": str(tmp_path / "bot.db")})
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["provider"] == "claude" and body["reply"]
    assert body["attempts"] == [
        {
            "provider": "claude",
            "outcome": "success",
            "error_kind": None,
            "latency_ms": body["attempts"][0]["latency_ms"],
        }
    ]
    assert "SANDBOX MODE" in result.stderr


def test_ask_reports_fallback_and_all_down(tmp_path: Path, emulator) -> None:
    env = {**provider_env_for(emulator), "DATABASE_PATH": str(tmp_path / "bot.db")}
    emulator.set_fault("claude", "credit_exhausted")
    result = run_cli("ask", "--json", "Light don go", env=env)
    body = json.loads(result.stdout)
    assert body["provider"] == "gemini"
    assert [(a["provider"], a["error_kind"]) for a in body["attempts"]] == [
        ("claude", "credit_exhausted"),
        ("gemini", None),
    ]

    emulator.set_fault("gemini", "auth_failed")
    emulator.set_fault("openai", "auth_failed")
    result = run_cli("ask", "Light don go", env=env)
    assert result.returncode == 3
    assert "no provider answered" in result.stderr
    assert "sk-test-openai-key-0003" not in result.stderr + result.stdout


def test_ask_with_a_broken_config_exits_2_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "providers.yaml"
    config.write_text("model_list: 3\n", encoding="utf-8")
    result = run_cli("ask", "hi", env={"DATABASE_PATH": str(tmp_path / "bot.db"), "ROUTER_CONFIG": str(config)})
    assert result.returncode == 2
    assert f"{config}: model_list" in result.stderr
