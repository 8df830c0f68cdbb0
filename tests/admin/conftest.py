"""Fixtures of the admin tests: an app on a fresh database wired to the session emulator, an admin
client, a loopback server for the app (for Chromium and subprocesses) and a local alert receiver."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from bot.services import Services
from bot.web import create_app, services_of
from tests.support import write_router_config

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin_env(provider_env: dict[str, str]) -> dict[str, str]:
    # No WhatsApp worker threads: admin tests drive nothing through the inbound queue.
    return {**provider_env, "ADMIN_API_TOKEN": TOKEN, "WHATSAPP_WORKER_THREADS": "0"}


@pytest.fixture
def make_app(tmp_path: Path, admin_env: dict[str, str]):
    """Build an app on this test's database; ``env`` entries are added to the admin env."""

    def make(env: dict[str, str] | None = None, **djobea: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "DATABASE_PATH": str(tmp_path / "bot.db"),
            "PROVIDER_ENV": {**admin_env, **(env or {})},
        }
        if djobea:
            config["ROUTER_CONFIG"] = str(write_router_config(tmp_path, **djobea))
        return create_app(config)

    return make


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def services(app: Flask) -> Services:
    return services_of(app)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served on a loopback port from a thread; yields its base URL."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@dataclass
class AlertReceiver:
    """A local webhook endpoint recording the JSON bodies it receives; can be told to fail."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    fail_next: int = 0
    condition: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: len(self.received) >= count, timeout)


@pytest.fixture
def alert_receiver() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.condition:
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
                else:
                    receiver.received.append(json.loads(body))
                receiver.condition.notify_all()
            self.send_response(503 if failing else 204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/alerts"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


REPO_ROOT = Path(__file__).resolve().parents[2]


def process_env(env: dict[str, str], database: Path) -> dict[str, str]:
    """Environment for a ``python -m bot ...`` subprocess on this test's database and emulator."""
    import os

    inherited = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_BASE"))}
    return {**inherited, **env, "DATABASE_PATH": str(database), "PYTHONPATH": str(REPO_ROOT)}


# ``python -m bot`` as a subprocess, exactly as an operator runs it.
BOT_COMMAND = [sys.executable, "-m", "bot"]
