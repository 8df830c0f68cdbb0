"""``python -m bot.sandbox.emulator`` run alone answers like the in-process sandbox: an app pointed at it
with SANDBOX_EMULATOR_URL (and no provider key) gets real replies, not the holding reply; ``--echo``
keeps the raw ``[provider] ...`` echo for tests of the emulator itself."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.web import create_app, services_of

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def standalone_emulator(*flags: str) -> Iterator[str]:
    """The emulator in its own process on a free port; yields its base URL (the first line it prints)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox.emulator", "--port", "0", *flags],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        yield base_url
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.stdout.close()


def test_an_app_behind_a_standalone_emulator_gets_real_replies(tmp_path: Path) -> None:
    with standalone_emulator() as base_url:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_PATH": str(tmp_path / "bot.db"),
                "SANDBOX_EMULATOR_URL": base_url,
                "PROVIDER_ENV": {"WHATSAPP_WORKER_THREADS": "0"},  # no provider key: sandbox mode
            }
        )
        try:
            assert services_of(app).llm.sandbox is None  # no emulator of its own: it uses the standalone one
            client = app.test_client()
            first = client.post("/webhook/chat", json={"user": "visitor-1", "message": "Hello, my tap is leaking"})
            # A control-API reset (as tests do between runs) goes back to the standalone default, not to the echo.
            assert httpx.post(base_url + "/_emulator/reset", timeout=5).status_code == 200
            second = client.post("/webhook/chat", json={"user": "visitor-2", "message": "My fridge stopped working"})
            calls = httpx.get(base_url + "/_emulator/calls", timeout=5).json()["calls"]
        finally:
            services_of(app).llm.close()

    assert first.status_code == 200 and first.json["holding"] is False, first.json
    assert first.json["provider"] == "claude" and "neighbourhood" in first.json["reply"]
    assert second.json["holding"] is False and "appliance repair" in second.json["reply"], second.json
    assert [(c["provider"], c["status"]) for c in calls] == [("claude", 200)]  # one call since the reset


def test_echo_flag_keeps_the_raw_echo() -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]}
    with standalone_emulator("--echo") as base_url:
        response = httpx.post(base_url + "/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=5)

    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "[claude] hello there"}]
