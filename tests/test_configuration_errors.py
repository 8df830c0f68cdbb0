"""Bad DATABASE_PATH, ADMIN_API_TOKEN and SANDBOX_EMULATOR_URL stop a process with a configuration error
that names what is wrong: exit status 2 and one line on stderr from the CLI, a named error from
``create_app`` (what gunicorn shows when a worker cannot boot), never a raw sqlite3 or OS traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.admin.settings import ADMIN_TOKEN_MIN_CHARS, AdminSettings, AdminSettingsError
from bot.settings import Settings, SettingsError
from bot.store import StoreOpenError
from bot.web import create_app

REPO = Path(__file__).resolve().parents[1]
KEY_VARIABLES = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY")
SHORT_TOKEN = "short-secret-x"  # 14 characters: refused, and never printed


def run_bot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m bot ...`` as an operator runs it, without any provider key (sandbox mode)."""
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES and not k.endswith("_API_BASE")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def assert_configuration_error(result: subprocess.CompletedProcess[str], *named: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("configuration error: "), result.stderr
    for text in named:
        assert text in result.stderr


# --- through the real CLI ---------------------------------------------------------------------------------


def test_a_directory_as_database_path_is_a_configuration_error(tmp_path: Path) -> None:
    directory = tmp_path / "instance"
    directory.mkdir()

    result = run_bot("ask", "hi", env={"DATABASE_PATH": str(directory)})

    assert_configuration_error(result, str(directory), "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instance"]  # no lock file left beside it


def test_a_short_admin_token_refuses_to_start_without_printing_it(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "ADMIN_API_TOKEN": SHORT_TOKEN}

    result = run_bot("status", env=env)

    assert_configuration_error(result, "ADMIN_API_TOKEN", f"at least {ADMIN_TOKEN_MIN_CHARS} characters")
    assert SHORT_TOKEN not in result.stderr + result.stdout


def test_a_sandbox_url_that_is_not_a_url_is_a_configuration_error(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "SANDBOX_EMULATOR_URL": "notaurl"}

    result = run_bot("ask", "hi", env=env)

    assert_configuration_error(result, "SANDBOX_EMULATOR_URL", "'notaurl'")


# --- create_app, as gunicorn's wsgi.py calls it -----------------------------------------------------------


def app_config(tmp_path: Path, **overrides: str) -> dict[str, object]:
    env = {"WHATSAPP_WORKER_THREADS": "0", **overrides}
    return {"TESTING": True, "DATABASE_PATH": env.pop("DATABASE_PATH", str(tmp_path / "bot.db")), "PROVIDER_ENV": env}


def test_create_app_names_a_database_path_under_a_regular_file(tmp_path: Path) -> None:
    regular_file = tmp_path / "hostname"
    regular_file.write_text("not a directory\n", encoding="utf-8")
    database = regular_file / "bot.db"

    with pytest.raises(StoreOpenError) as raised:
        create_app(app_config(tmp_path, DATABASE_PATH=str(database)))

    assert str(database) in str(raised.value) and f"{regular_file} is not a directory" in str(raised.value)


def test_create_app_names_a_directory_as_database_path(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="is a directory"):
        create_app(app_config(tmp_path, DATABASE_PATH=str(tmp_path)))


def test_create_app_refuses_a_short_admin_token(tmp_path: Path, provider_env: dict[str, str]) -> None:
    # Provider keys (pointing at the session emulator): no sandbox emulator is started only to be refused.
    with pytest.raises(AdminSettingsError, match="ADMIN_API_TOKEN") as raised:
        create_app(app_config(tmp_path, **provider_env, ADMIN_API_TOKEN=SHORT_TOKEN))
    assert SHORT_TOKEN not in str(raised.value)


def test_create_app_refuses_a_sandbox_url_without_a_host(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SANDBOX_EMULATOR_URL"):
        create_app(app_config(tmp_path, SANDBOX_EMULATOR_URL="http://"))


# --- the rules ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["notaurl", "127.0.0.1:8090", "ftp://127.0.0.1:8090", "http://", "http:///v1", "http://host:port"]
)
def test_sandbox_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(SettingsError, match="^SANDBOX_EMULATOR_URL: "):
        Settings.from_env({"SANDBOX_EMULATOR_URL": url})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090", "https://emulator.internal/", "HTTP://localhost"])
def test_sandbox_url_accepts_http_and_https_urls(url: str) -> None:
    assert Settings.from_env({"SANDBOX_EMULATOR_URL": url}).sandbox_url == url


def test_admin_token_length_is_checked_and_blank_still_means_disabled() -> None:
    with pytest.raises(AdminSettingsError, match="ADMIN_API_TOKEN"):
        AdminSettings.from_env({"ADMIN_API_TOKEN": "a"})
    with pytest.raises(AdminSettingsError, match="ADMIN_API_TOKEN"):
        AdminSettings.from_env({"ADMIN_API_TOKEN": "x" * (ADMIN_TOKEN_MIN_CHARS - 1)})
    token = "y" * ADMIN_TOKEN_MIN_CHARS
    assert AdminSettings.from_env({"ADMIN_API_TOKEN": f" {token} "}).admin_api_token == token
    assert AdminSettings.from_env({"ADMIN_API_TOKEN": "   "}).admin_api_token is None


def test_a_bad_media_setting_stops_the_worker_and_the_app_naming_it(tmp_path: Path) -> None:
    """Checked at start, not when the first photo arrives."""
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "MEDIA_MAX_BYTES": "lots"}

    assert_configuration_error(run_bot("worker", "--drain", env=env), "MEDIA_MAX_BYTES")
    assert_configuration_error(run_bot("serve", "--port", "0", env=env), "MEDIA_MAX_BYTES")
    with pytest.raises(ValueError, match="MEDIA_MAX_BYTES"):
        create_app({"PROVIDER_ENV": env})
