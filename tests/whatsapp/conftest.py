"""Fixtures of the WhatsApp tests: an app on a fresh database whose providers and Twilio are the session
emulator (LiteLLM's and twilio's real HTTP clients), a fake clock and recorded sleeps for the worker and
sender, Twilio-signed form posts, and a loopback server for callbacks and subprocesses."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bot.sandbox import ProviderEmulator
from bot.sandbox.scripted_model import djobea_model_reply
from bot.web import create_app, services_of
from bot.whatsapp.runtime import WhatsAppRuntime
from tests.conftest import write_router_config
from tests.timekeeping import FakeClock, wait_until  # noqa: F401  (re-exported to the WhatsApp tests)

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-test-auth-token-5678"
BOT_NUMBER = "+14155238886"
CUSTOMER = "+237699000001"
WEBHOOK_URL = "http://localhost/webhook/whatsapp"


@dataclass
class Harness:
    app: Flask
    client: FlaskClient
    runtime: WhatsAppRuntime
    emulator: ProviderEmulator
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)

    def whatsapp(
        self,
        body: str = "Bonjour",
        customer: str = CUSTOMER,
        sid: str | None = None,
        url: str = WEBHOOK_URL,
        signed_url: str | None = None,
        **extra: str,
    ) -> Any:
        """POST a Twilio-signed inbound message; returns the test client's response."""
        if sid is None:
            sid = f"SM{uuid.uuid4().hex}"
        form = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": f"whatsapp:{customer}",
            "To": f"whatsapp:{BOT_NUMBER}",
            "Body": body,
            "NumMedia": "0",
            "ProfileName": "Client",
            "WaId": customer.lstrip("+"),
            **extra,
        }
        return self.client.post(url, data=form, headers={"X-Twilio-Signature": sign(signed_url or url, form)})

    def drain(self) -> int:
        return self.runtime.worker.drain(timeout_s=30)

    def sent(self, to: str = CUSTOMER) -> list[str]:
        """Bodies the emulated Twilio accepted for ``to``, oldest first."""
        return [m["body"] for m in self.emulator.twilio.messages(f"whatsapp:{to}")]

    def inbound_statuses(self) -> list[str]:
        return [r[0] for r in self.runtime.store.db.execute("select status from inbound_messages order by id")]


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def twilio_env(emulator: ProviderEmulator) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_NUMBER": BOT_NUMBER,
        "TWILIO_API_BASE": emulator.base_url,
        "WHATSAPP_WORKER_THREADS": "0",
    }


@pytest.fixture
def make_harness(
    emulator: ProviderEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Build an app (same database on every call, like a restart); keyword arguments override env values."""
    built: list[Harness] = []
    clock = FakeClock()
    # Providers stay callable after failures (degraded, not cooling) so recovery is driven by the test alone.
    router_config = write_router_config(tmp_path, failures_before_cooldown=1000)

    def make(responder: Any = djobea_model_reply, **env: str) -> Harness:
        emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
        emulator.set_responder(None, responder)
        sleeps: list[float] = []
        app = create_app(
            {
                "DATABASE_PATH": str(tmp_path / "bot.db"),
                "ROUTER_CONFIG": str(router_config),
                "PROVIDER_ENV": {**provider_env, **twilio_env(emulator), **env},
                "WHATSAPP_CLOCK": clock,
                "WHATSAPP_SLEEP": sleeps.append,
            }
        )
        harness = Harness(app, app.test_client(), services_of(app).whatsapp, emulator, clock, sleeps)
        built.append(harness)
        return harness

    yield make
    for harness in built:
        harness.runtime.stop_workers()
        harness.app.extensions["djobea"].llm.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


class LiveServer:
    """An HTTP server on 127.0.0.1 whose port is known before the app it serves is built."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _dispatch(self, environ: dict, start_response: Callable) -> Any:
        assert self.app is not None, "set live_server.app first"
        return self.app(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    """Serve an app on 127.0.0.1 (Twilio status callbacks from the emulator reach it over real HTTP)."""
    server = LiveServer()
    yield server
    server.stop()
