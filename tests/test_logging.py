"""Logging under the Procfile's real gunicorn: every line has time, level, logger and request id, the access log is
on, LOG_FORMAT=json gives one JSON object per line, and a webhook's MessageSid follows its message everywhere."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from bot.store import Store
from tests.support import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, CUSTOMER, sign, twilio_env, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 90.0
ADMIN_TOKEN = "admin-token-for-logging-test-4242"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) \[(\S+)\] ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(tmp_path: Path, emulator, log_format: str) -> tuple[subprocess.Popen, str, Path, Path]:
    """The Procfile's web line (its config file, one worker) in sandbox mode, Twilio sends to the emulator."""
    database = tmp_path / "bot.db"
    Store(database)
    inherited = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_BASE"))}
    env = {
        **inherited,
        **twilio_env(emulator),
        "WHATSAPP_WORKER_THREADS": "1",
        "DATABASE_PATH": str(database),
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "LOG_FORMAT": log_format,
        "DJOBEA_DOTENV": "0",
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.pop("SANDBOX_EMULATOR_URL", None)
    env.pop("LOG_LEVEL", None)
    port = free_port()
    output = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "1", "--threads", "4"]
    process = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env=env,
        cwd=REPO_ROOT,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}", database, output


def post_signed_message(url: str) -> str:
    sid = f"SM{uuid.uuid4().hex}"
    form = {
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"whatsapp:{CUSTOMER}",
        "To": f"whatsapp:{BOT_NUMBER}",
        "Body": "Bonjour, j'ai une fuite d'eau à Bonamoussadi",
        "NumMedia": "0",
        "ProfileName": "Client",
    }
    webhook = f"{url}/webhook/whatsapp"
    with httpx.Client(timeout=10) as http:
        wait_until(lambda: _answers(http, url), timeout=DEADLINE_S, what="gunicorn to answer")
        response = http.post(webhook, data=form, headers={"X-Twilio-Signature": sign(webhook, form)})
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-Id"] == sid
    return sid


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(f"{url}/").status_code == 200
    except httpx.TransportError:
        return False


def run_one_message(tmp_path: Path, emulator, log_format: str) -> tuple[str, str, Store]:
    """Start gunicorn, post one message, wait until its reply reached the emulated Twilio; stop gunicorn."""
    process, url, database, output = start_gunicorn(tmp_path, emulator, log_format)
    try:
        sid = post_signed_message(url)
        store = Store(database)

        def replied() -> bool:
            rows = store.db.execute("select status from outbound_messages where kind = 'reply'").fetchall()
            return bool(rows) and all(status in ("queued", "sent", "delivered") for (status,) in rows)

        wait_until(replied, timeout=DEADLINE_S, what="the reply to reach the emulated Twilio")
        wait_until(lambda: "request_id=" in output.read_text(), timeout=DEADLINE_S, what="an access-log line")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return sid, output.read_text(encoding="utf-8"), store


def test_gunicorn_text_lines_carry_time_level_logger_and_the_message_sid(tmp_path: Path, emulator) -> None:
    sid, text, store = run_one_message(tmp_path, emulator, "text")

    lines = [line for line in text.splitlines() if line.strip()]
    starts = [TEXT_LINE.match(line) for line in lines]
    assert all(starts), [line for line, m in zip(lines, starts, strict=True) if not m][:5]
    bot_info = [m for m in starts if m.group(1) == "INFO" and m.group(2).startswith("bot.")]
    assert {m.group(2) for m in bot_info if m.group(3) == sid} >= {"bot.web.webhooks", "bot.whatsapp.worker"}
    assert any(m.group(2) == "gunicorn.error" for m in starts)  # gunicorn's own lines, same format
    [access] = [line for line in lines if "POST /webhook/whatsapp" in line]
    assert TEXT_LINE.match(access).group(2, 3) == ("gunicorn.access", sid) and f"request_id={sid}" in access
    calls = store.db.execute("select distinct request_id from llm_calls where purpose = 'chat'").fetchall()
    assert calls == [(sid,)]
    # The outbound reply carries the MessageSid itself, and is tied to its inbound message, whose sid this is.
    outbound = store.db.execute(
        "select o.trace_id, i.message_sid from outbound_messages o join inbound_messages i on i.id = o.inbound_id"
    ).fetchall()
    assert outbound and set(outbound) == {(sid, sid)}
    assert AUTH_TOKEN not in text and ADMIN_TOKEN not in text


def test_log_format_json_gives_one_object_per_line(tmp_path: Path, emulator) -> None:
    sid, text, _ = run_one_message(tmp_path, emulator, "json")

    entries = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line parses
    assert all({"time", "level", "logger", "request_id", "message"} <= entry.keys() for entry in entries)
    mine = [e for e in entries if e["request_id"] == sid]
    assert {e["logger"] for e in mine if e["level"] == "INFO"} >= {"bot.web.webhooks", "bot.whatsapp.worker"}
    assert any(e["logger"] == "gunicorn.access" and "POST /webhook/whatsapp" in e["message"] for e in mine)
    assert AUTH_TOKEN not in text and ADMIN_TOKEN not in text


@pytest.mark.parametrize(("name", "value"), [("LOG_LEVEL", "LOUD"), ("LOG_FORMAT", "xml")])
def test_a_bad_log_setting_stops_a_command_with_its_name(name: str, value: str) -> None:
    env = {**os.environ, name: value, "DJOBEA_DOTENV": "0", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "clock"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2 and name in result.stderr and "Traceback" not in result.stderr
