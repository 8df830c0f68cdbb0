"""Two processes on one database: what one learns about a provider, the other acts on without a call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import provider_env_for

REPO = Path(__file__).resolve().parents[2]


def ask(db_path: Path, env: dict[str, str], message: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", message],
        cwd=REPO,
        env={**os.environ, **env, "DATABASE_PATH": str(db_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_provider_benched_by_one_process_is_skipped_by_another(tmp_path: Path, emulator) -> None:
    env = provider_env_for(emulator)
    db_path = tmp_path / "shared.db"
    emulator.set_fault("claude", "credit_exhausted")

    first = ask(db_path, env, "Mon chauffe-eau fuit")
    assert first["provider"] == "gemini"
    assert [a["error_kind"] for a in first["attempts"]] == ["credit_exhausted", None]
    assert emulator.call_count("claude") == 1

    second = ask(db_path, env, "Le courant est coupé")
    assert second["provider"] == "gemini"
    assert [a["provider"] for a in second["attempts"]] == ["gemini"]
    assert emulator.call_count("claude") == 1, "the second process must not call a benched provider"
