"""``python -m bot chat``: a terminal conversation against the sandbox, provider shown on every turn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "bot"]


def run_chat(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("TWILIO_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [*CLI, "chat", "--db", str(tmp_path / "chat.db"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_terminal_chat_runs_a_whole_request_in_the_sandbox(tmp_path: Path) -> None:
    lines = "Bonjour, mon robinet coule\nJe suis à Makepe\nc'est urgent\noui\n/quit\n"

    result = run_chat(tmp_path, stdin=lines)

    assert result.returncode == 0, result.stderr
    replies = [line for line in result.stdout.splitlines() if line.startswith("djobea> ")]
    providers = [line.strip() for line in result.stdout.splitlines() if line.startswith("   [")]
    assert len(replies) == 4 and providers == ["[claude]"] * 4
    assert "quartier" in replies[0] and "enregistrée" in replies[3]
    assert "sandbox" in result.stderr
