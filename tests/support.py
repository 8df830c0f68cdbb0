"""What tests in several folders share, as plain code (fixtures stay in the conftest files):

- time without sleeping on work: a clock that moves only when told, and polling with a deadline;
- the provider emulator's environment and router configs with test overrides;
- the WhatsApp side: Twilio credentials, signed form posts, the ``Harness`` around a test app, a loopback server.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bot.llm.router_config import DEFAULT_CONFIG_PATH
from bot.sandbox import ProviderEmulator
from bot.whatsapp.runtime import WhatsAppRuntime

PROVIDERS = ("claude", "gemini", "openai")


class FakeClock:
    """Wall-clock time that only moves when a test says so (cooldowns, backoff and leases without waiting)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it is truthy (and return its value) or fail once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not met within {timeout}s")


def provider_env_for(emulator: ProviderEmulator) -> dict[str, str]:
    """Keys and base URLs pointing every provider at ``emulator`` (as the real variables would)."""
    return {
        "ANTHROPIC_API_KEY": "sk-ant-test-claude-0001",
        "ANTHROPIC_API_BASE": emulator.api_base("claude"),
        "GEMINI_API_KEY": "gemini-test-key-0002",
        "GEMINI_API_BASE": emulator.api_base("gemini"),
        "OPENAI_API_KEY": "sk-test-openai-key-0003",
        "OPENAI_API_BASE": emulator.api_base("openai"),
    }


def write_router_config(directory: Path, timeout_s: float | None = None, **djobea: Any) -> Path:
    """The shipped config with test overrides: per-attempt timeouts and ``djobea:`` policy knobs."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    if timeout_s is not None:
        for entry in config["model_list"]:
            entry["litellm_params"]["timeout"] = timeout_s
    config["djobea"].update(djobea)
    path = directory / "providers.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


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


@contextmanager
def harnesses(
    emulator: ProviderEmulator,
    provider_env: dict[str, str],
    tmp_path: Path,
    clock: FakeClock | None = None,
    **defaults: str,
) -> Iterator[Callable[..., Harness]]:
    """A maker of apps on ``tmp_path/bot.db`` (the same database on every call, like a restart) whose providers and
    Twilio are ``emulator``, on ``clock`` (a new ``FakeClock`` by default); ``defaults`` and each call's keyword
    arguments override env values. Providers stay
    callable after failures (degraded, not cooling), so recovery is driven by the test alone."""
    from bot.sandbox.scripted_model import djobea_model_reply
    from bot.web import create_app, services_of

    built: list[Harness] = []
    clock = clock or FakeClock()
    router_config = write_router_config(tmp_path, failures_before_cooldown=1000)

    def make(responder: Any = djobea_model_reply, **env: str) -> Harness:
        emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
        emulator.set_responder(None, responder)
        sleeps: list[float] = []
        app = create_app(
            {
                "DATABASE_PATH": str(tmp_path / "bot.db"),
                "ROUTER_CONFIG": str(router_config),
                "PROVIDER_ENV": {**provider_env, **twilio_env(emulator), **defaults, **env},
                "WHATSAPP_CLOCK": clock,
                "WHATSAPP_SLEEP": sleeps.append,
            }
        )
        harness = Harness(app, app.test_client(), services_of(app).whatsapp, emulator, clock, sleeps)
        built.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in built:
            harness.runtime.stop_workers()
            harness.app.extensions["djobea"].llm.close()


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def media_fields(media: list[tuple[str, str]]) -> dict[str, str]:
    """The webhook form fields of an inbound message's media, from (MediaUrl, content type) pairs; pass them to
    ``Harness.whatsapp(**media_fields(...))``. The URLs come from ``emulator.twilio.add_media``."""
    fields = {"NumMedia": str(len(media))}
    for n, (url, content_type) in enumerate(media):
        fields[f"MediaUrl{n}"] = url
        fields[f"MediaContentType{n}"] = content_type
    return fields


def twilio_env(emulator: ProviderEmulator) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_NUMBER": BOT_NUMBER,
        "TWILIO_API_BASE": emulator.base_url,
        "WHATSAPP_WORKER_THREADS": "0",
    }


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
