""".env.example lists every environment variable the code reads, and nothing else; its example values parse.

The code's variables are found where they are read: ``env.get("NAME")``, ``env["NAME"]``, ``_number(env, "NAME"``
and the other settings helpers, and ``os.environ/NAME`` in the router config.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.admin.settings import AdminSettings
from bot.dispatch import DispatchSettings
from bot.logs import log_settings
from bot.settings import Settings
from bot.web.limits import LimitSettings
from bot.whatsapp.settings import WhatsAppSettings

ROOT = Path(__file__).resolve().parents[1]
READ = re.compile(r'\b(?:env|environ)(?:\.get\(\s*|\[|,\s*)"([A-Z][A-Z0-9_]{2,})"|os\.environ/([A-Z][A-Z0-9_]{2,})')
EXAMPLE_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]+)=(.*)$")
# Read by the Procfile's shell line, not by Python.
PROCFILE_VARIABLES = {"PORT", "WEB_CONCURRENCY"}


def variables_in_code() -> set[str]:
    found: set[str] = set()
    for folder in ("bot", "router_config"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".yaml", ".yml"):
                continue
            text = path.read_text(encoding="utf-8")
            if path.suffix != ".py":  # a YAML comment may show the syntax itself (os.environ/NAME)
                text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
            found |= {a or b for a, b in READ.findall(text)}
    return found


def example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    return {m.group(1): m.group(2) for m in map(EXAMPLE_LINE.match, lines) if m}


def test_env_example_lists_exactly_the_variables_the_code_reads() -> None:
    code, listed = variables_in_code(), set(example())

    assert code - listed == set(), "read by the code but missing from .env.example"
    assert listed - code - PROCFILE_VARIABLES == set(), "in .env.example but read nowhere"
    assert {"LOG_LEVEL", "LOG_FORMAT", "DJOBEA_DOTENV", "TWILIO_AUTH_TOKEN", "ANTHROPIC_API_KEY"} <= code


def test_every_variable_is_explained_and_its_example_value_parses() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if EXAMPLE_LINE.match(line):
            previous = lines[index - 1]
            assert previous.startswith("# ") or EXAMPLE_LINE.match(previous), f"{line}: no explanation above it"
    values = {name: value for name, value in example().items() if value and name != "DJOBEA_DOTENV"}

    Settings.from_env(values)
    AdminSettings.from_env(values)
    WhatsAppSettings.from_env(values)
    LimitSettings.from_env(values)
    DispatchSettings.from_env(values)
    assert log_settings(values) == (20, "text")


def dotenv_run(tmp_path: Path, **env: str) -> str:
    import os
    import subprocess
    import sys

    code = "from bot.services import prepare_process; prepare_process(); import os; print(os.environ.get('RETENTION_DAYS'), os.environ.get('ALERT_CHECK_SECONDS'))"  # noqa: E501
    base = {k: v for k, v in os.environ.items() if k not in ("DJOBEA_DOTENV", "RETENTION_DAYS", "ALERT_CHECK_SECONDS")}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**base, "PYTHONPATH": str(ROOT), **env}, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dotenv_is_read_from_the_working_directory_without_overriding_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RETENTION_DAYS=30\nALERT_CHECK_SECONDS=45\n", encoding="utf-8")
    (tmp_path / "other.env").write_text("RETENTION_DAYS=7\n", encoding="utf-8")

    assert dotenv_run(tmp_path) == "30 45"
    assert dotenv_run(tmp_path, ALERT_CHECK_SECONDS="60") == "30 60"  # the environment wins
    assert dotenv_run(tmp_path, DJOBEA_DOTENV="0") == "None None"
    assert dotenv_run(tmp_path, DJOBEA_DOTENV="other.env") == "7 None"
