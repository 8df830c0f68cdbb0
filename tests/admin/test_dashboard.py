"""The /admin dashboard rendered by headless Chromium against a live app: it shows the data."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bot.services import Services
from tests.admin.conftest import TOKEN

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHAT = [{"role": "user", "content": "Ma douche fuit"}]


def render(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (virtual time waits for its fetches)."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_dashboard_shows_cards_and_charts_from_the_api(
    live_server: str, services: Services, emulator, tmp_path: Path
) -> None:
    services.llm.service.complete(CHAT)  # claude answers
    emulator.set_fault("claude", "credit_exhausted")
    services.llm.service.complete(CHAT)  # claude benched, gemini answers

    dom = render(f"{live_server}/admin#token={TOKEN}", tmp_path / "profile")

    assert 'data-loaded="true"' in dom
    claude = re.search(r'<article class="card card-benched" data-provider="claude">(.*?)</article>', dom, re.S)
    assert claude, dom[:3000]
    assert "credit_exhausted" in claude.group(1) and "credit balance is too low" in claude.group(1)
    assert "top up" in claude.group(1)
    assert '<article class="card card-healthy" data-provider="gemini">' in dom
    assert "Next request goes to gemini · 2 of 3 usable" in dom
    for provider in ("claude", "gemini"):
        assert re.search(rf'<polyline [^>]*data-provider="{provider}"', dom)  # success and latency lines
    assert re.search(r'<rect [^>]*data-provider="gemini" data-value="0.5"', dom)  # load: half the answers
    assert "2 requests, 2 answered (50.0 % by a fallback)" in dom
    assert TOKEN not in dom  # taken from the fragment into sessionStorage, then cleared from the URL


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_dashboard_asks_for_the_token_when_none_is_given(live_server: str, tmp_path: Path) -> None:
    dom = render(f"{live_server}/admin", tmp_path / "profile")

    assert re.search(r'<section id="login">', dom)  # shown: no longer hidden
    assert 'data-loaded="true"' not in dom


def test_dashboard_page_needs_no_cdn_and_locks_scripts_to_its_origin(client: FlaskClient) -> None:
    response = client.get("/admin")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "https://" not in html and "http://" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = client.get("/admin/static/admin.js").get_data(as_text=True)
    assert "/api/llm/status" in script and "sessionStorage" in script
    assert re.findall(r"https?://[^\"' ]+", script) == ["http://www.w3.org/2000/svg"]  # the SVG namespace only


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_requests_page_lists_requests_and_opens_one_with_its_conversation(
    live_server: str, services: Services, tmp_path: Path
) -> None:
    from bot.conversation.history import RequestDraft

    services.dispatch.directory.create("Alain", "+237690000001", ["plomberie"], [])
    history = services.whatsapp.history
    conversation = history.ensure("+237699000001", "whatsapp")
    draft = RequestDraft(status="confirmed", service_type="plomberie", location="Akwa", description="Ma douche fuit",
                         urgency="urgent")  # fmt: skip
    with services.store.immediate() as db:
        history.append(db, conversation.id, "user", "Ma douche fuit")
        history.append(db, conversation.id, "assistant", "Dans quel quartier êtes-vous ?")
        request_id = history.save_request(db, conversation.id, "+237699000001", draft, "fr")
    services.dispatch.start(request_id)

    dom = render(f"{live_server}/admin/demandes?request={request_id}#token={TOKEN}", tmp_path / "profile")

    assert 'data-loaded="true"' in dom
    assert re.search(rf'<tr data-id="{request_id}"[^>]*>.*?confirmée.*?plomberie.*?Akwa', dom, re.S), dom[:3000]
    assert f'data-request="{request_id}"' in dom
    assert '<div class="turn turn-user" data-role="user">Ma douche fuit</div>' in dom
    assert "Alain (lot 1) : skipped" in dom  # never wrote to us, no template: not reachable
    assert TOKEN not in dom


def test_requests_page_needs_no_cdn(client: FlaskClient) -> None:
    response = client.get("/admin/demandes")

    assert response.status_code == 200
    assert "https://" not in response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = client.get("/admin/static/demandes.js").get_data(as_text=True)
    assert "/api/requests" in script and re.findall(r"https?://", script) == []
