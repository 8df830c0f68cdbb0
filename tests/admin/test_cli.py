"""``python -m bot status`` and ``python -m bot selftest`` (run in-process through bot.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import Store

CHAT = [{"role": "user", "content": "Mon frigo fait du bruit"}]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, admin_env: dict[str, str], tmp_path: Path) -> Path:
    for name, value in admin_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "bot.db"))
    return tmp_path / "bot.db"


def test_status_prints_the_provider_table(cli_env: Path, emulator, capsys, make_llm) -> None:
    emulator.set_fault("claude", "credit_exhausted")
    make_llm().complete(CHAT)
    capsys.readouterr()

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["PROVIDER", "STATE", "SINCE"]
    claude = next(line for line in lines if line.startswith("claude"))
    assert "benched" in claude and "credit_exhausted" in claude
    assert next(line for line in lines if line.startswith("gemini")).split()[1] == "healthy"
    assert "next request goes to: gemini" in out
    assert "self-test probes today: 0 calls, 0 tokens" in out
    assert "is `python -m bot clock` (or `serve`) running?" in out


def test_selftest_probes_now_and_brings_a_provider_back(cli_env: Path, emulator, capsys, make_llm) -> None:
    emulator.set_fault("claude", "auth_failed")
    make_llm().complete(CHAT)

    assert main(["selftest", "--json"]) == 3  # claude's probe failed
    results = {r["provider"]: r for r in json.loads(capsys.readouterr().out)}
    assert results["claude"]["error_kind"] == "auth_failed" and results["gemini"]["outcome"] == "success"

    emulator.clear_fault("claude")
    assert main(["selftest", "--provider", "claude"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("claude") and "ok" in out and out.rstrip().endswith("-> healthy")
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["next_provider"] == "claude"
    assert status["probes_today"]["probes"] == 4 and 0 < status["probes_today"]["tokens"] <= 4 * 25
    actors = [r["actor"] for r in Store(cli_env).db.query("select actor from provider_events order by id")]
    assert actors == ["traffic", "probe:cli"]


def test_selftest_due_probes_only_what_traffic_does_not_cover(cli_env: Path, emulator, capsys, make_llm) -> None:
    make_llm().complete(CHAT)  # claude is busy
    emulator.reset()

    assert main(["selftest", "--due", "--json"]) == 0  # gemini and openai are idle (never called)

    assert sorted(r["provider"] for r in json.loads(capsys.readouterr().out)) == ["gemini", "openai"]
    assert emulator.call_count("claude") == 0


def test_selftest_rejects_an_unknown_provider(cli_env: Path, capsys) -> None:
    assert main(["selftest", "--provider", "mistral"]) == 2
    assert "unknown provider 'mistral'; configured: claude, gemini, openai" in capsys.readouterr().err


def test_bad_admin_settings_are_a_configuration_error(cli_env: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SELFTEST_INTERVAL_MINUTES", "often")

    assert main(["status"]) == 2
    assert "SELFTEST_INTERVAL_MINUTES: must be a number" in capsys.readouterr().err
