"""The unauthenticated web routes (/webhook/chat, /api/ai-suggestions/generate) under attack and under strain.

- A conversation is reachable only with the session token the server issued: a ``user`` id alone opens
  nothing, a forged token is a 401 with no model call, the token is stored only as a hash.
- A store that cannot take a write (immutable file, full disk) is a 503 with Retry-After before any model
  is asked, and a 503, never a 500, when the disk fills while the model answers.
- Limits shared by every process (two apps on one database stand for two gunicorn workers): per address,
  per session, the daily budget (which never stops WhatsApp), and the per-process model slots.

Disk failures are real ones: ``chattr +i`` and a full tmpfs work as root, where file modes do not; without
those privileges the two tests say so and skip.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.conversation.fixed_replies import HOLDING_REPLY
from bot.sandbox.scripted_model import djobea_model_reply
from bot.web import create_app, services_of
from bot.web.daily_spend import DailySpend
from bot.web.limits import LimitSettings, LimitSettingsError
from tests.support import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER, FakeClock, Harness, twilio_env, write_router_config
from tests.whatsapp.test_chat_and_suggestions import Visitor, customer_of, suggest

CHAT = "/webhook/chat"
SUGGEST = "/api/ai-suggestions/generate"
FIRST_TURN = {"user": "visitor", "message": "Hello, my tap is leaking"}


def from_address(harness: Harness, address: str, path: str = CHAT, headers: dict | None = None, **body):
    body = body if "session" in body else {"user": "visitor", **body}
    return harness.client.post(path, json=body, environ_base={"REMOTE_ADDR": address}, headers=headers or {})


def assert_refused(response, status: int, reason: str) -> int:
    """The refusal's status, JSON reason and Retry-After (returned, in seconds)."""
    assert response.status_code == status, response.json
    assert response.json["reason"] == reason and response.json["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


# --- the session credential -------------------------------------------------------------------------------


def test_alices_request_is_out_of_reach_of_anyone_posting_her_user_id(harness: Harness) -> None:
    alice = Visitor(harness, "alice-42")
    alice.say("Bonjour, j'ai une fuite d'eau sous l'évier")
    alice.say("Je suis à Bonapriso, près de la boulangerie")
    summary = alice.say("C'est urgent")
    assert summary.json["request"]["status"] == "awaiting_confirmation"
    alice_customer = customer_of(harness, summary.json["conversation_id"])

    peek = chat_as(harness, user="alice-42", message="?")
    confirm = chat_as(harness, user="alice-42", message="oui")
    peek_suggestions = suggest(harness, user="alice-42", message="?")

    for response in (peek, confirm):
        assert response.status_code == 200
        assert response.json["conversation_id"] != summary.json["conversation_id"]
        text = str(response.json)
        assert "Bonapriso" not in text and "évier" not in text and "urgent" not in text
    assert peek_suggestions.json["conversation_id"] is None
    assert "Bonapriso" not in str(harness.emulator.calls()[-1].request.messages)  # not even in the prompt
    [request] = harness.runtime.history.requests(alice_customer)
    assert request["status"] == "awaiting_confirmation"  # "oui" from someone else confirmed nothing


def chat_as(harness: Harness, **body):
    return harness.client.post(CHAT, json=body)


def test_the_token_is_required_after_the_first_turn_and_a_forged_one_is_401(harness: Harness) -> None:
    visitor = Visitor(harness, "bob")
    first = visitor.say("Hello, my tap is leaking")
    calls = harness.emulator.call_count()

    forged_chat = chat_as(harness, session=secrets.token_urlsafe(32), message="I am in Akwa")
    forged_suggestions = suggest(harness, session=secrets.token_urlsafe(32), message="I am in Akwa")
    again_without = chat_as(harness, user="bob", message="I am in Bonapriso")
    again_with = visitor.say("I am in Bonapriso")

    for forged in (forged_chat, forged_suggestions):
        assert forged.status_code == 401 and "unknown chat session" in forged.json["detail"]
    assert harness.emulator.call_count() == calls + 2  # the two answered turns only, no call for the 401s
    assert again_without.json["conversation_id"] != first.json["conversation_id"]
    assert again_with.json["conversation_id"] == first.json["conversation_id"]
    assert again_with.json["request"]["location"] == "Bonapriso"


def test_the_token_is_kept_only_as_a_hash_and_never_logged(harness: Harness, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    visitor = Visitor(harness, "carol")
    visitor.say("Hello, my fridge stopped working")
    visitor.say("I am in Akwa")
    visitor.suggest()
    token = visitor.session or ""
    harness.runtime.store.db.execute("pragma wal_checkpoint(FULL)")

    stored = b"".join(p.read_bytes() for p in harness.runtime.store.path.parent.glob("bot.db*"))
    assert token and token.encode() not in stored
    [row] = harness.runtime.store.db.execute("select token_hash, user_label from chat_sessions").fetchall()
    assert row[1] == "carol" and len(row[0]) == 64 and row[0] != token
    assert token not in caplog.text


# --- a store that cannot take a write ---------------------------------------------------------------------


@pytest.fixture
def immutable_database(harness: Harness) -> Iterator[Callable[[bool], None]]:
    """Make the database files immutable (``chattr +i``: refused even to root) or writable again."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    files = [harness.runtime.store.path, harness.runtime.store.path.with_name("bot.db-wal")]
    changed: list[Path] = []

    def immutable(on: bool) -> None:
        for path in files:
            result = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"chattr cannot make the database immutable here: {result.stderr.strip()}")
            if on:
                changed.append(path)

    yield immutable
    for path in changed:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize("route", [CHAT, SUGGEST])
def test_an_immutable_database_is_503_before_any_model_is_asked(
    harness: Harness, immutable_database: Callable[[bool], None], route: str
) -> None:
    immutable_database(True)

    response = harness.client.post(route, json=FIRST_TURN)

    assert_refused(response, 503, "store_unavailable")
    assert harness.emulator.call_count() == 0
    immutable_database(False)
    assert harness.client.post(route, json=FIRST_TURN).status_code == 200


class SmallDisk:
    """A 4 MB tmpfs: a real filesystem that fills up (mounting needs root, like chattr)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            while True:  # the last few bytes too
                try:
                    os.write(fd, b"\0")
                except OSError:
                    break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip()}): needs root")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def harness_on_small_disk(small_disk: SmallDisk, emulator, provider_env, tmp_path: Path) -> Iterator[Harness]:
    emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    emulator.set_responder(None, djobea_model_reply)
    app = create_app(
        {
            "DATABASE_PATH": str(small_disk.path / "bot.db"),
            "ROUTER_CONFIG": str(write_router_config(tmp_path, failures_before_cooldown=1000)),
            "PROVIDER_ENV": {**provider_env, **twilio_env(emulator)},
            "WHATSAPP_CLOCK": FakeClock(),
        }
    )
    harness = Harness(app, app.test_client(), services_of(app).whatsapp, emulator, FakeClock())
    # An empty WAL: the next commit has to grow a file, as on a disk that filled up since the last checkpoint.
    harness.runtime.store.db.execute("pragma wal_checkpoint(TRUNCATE)")
    yield harness
    small_disk.free()
    app.extensions["djobea"].llm.close()


@pytest.mark.parametrize("route", [CHAT, SUGGEST])
def test_a_full_disk_is_503_before_any_model_is_asked(
    harness_on_small_disk: Harness, small_disk: SmallDisk, route: str
) -> None:
    harness = harness_on_small_disk
    small_disk.fill()

    response = harness.client.post(route, json=FIRST_TURN)

    assert_refused(response, 503, "store_unavailable")
    assert harness.emulator.call_count() == 0
    small_disk.free()
    assert harness.client.post(route, json=FIRST_TURN).status_code == 200


def test_a_disk_that_fills_while_the_model_answers_is_503_not_500(
    harness_on_small_disk: Harness, small_disk: SmallDisk
) -> None:
    harness = harness_on_small_disk

    def model_then_full_disk(request) -> str:
        small_disk.fill()
        return djobea_model_reply(request)

    harness.emulator.set_responder("claude", model_then_full_disk)
    response = harness.client.post(CHAT, json=FIRST_TURN)

    assert_refused(response, 503, "store_unavailable")
    assert harness.emulator.call_count() == 1
    small_disk.free()
    harness.emulator.set_responder("claude", None)
    assert harness.client.post(CHAT, json=FIRST_TURN).status_code == 200


# --- limits shared by every process -----------------------------------------------------------------------


def test_per_address_limit_is_shared_by_two_workers_and_reopens_next_minute(make_harness) -> None:
    one, two = make_harness(CHAT_IP_REQUESTS_PER_MINUTE="3"), make_harness(CHAT_IP_REQUESTS_PER_MINUTE="3")

    answered = [from_address(h, "203.0.113.9", message="Hello") for h in (one, two, one)]
    calls = one.emulator.call_count()
    refused = from_address(two, "203.0.113.9", message="Hello")
    other_address = from_address(two, "198.51.100.7", message="Hello")
    other_route = from_address(one, "203.0.113.9", path=SUGGEST, message="Hello")

    assert [r.status_code for r in answered] == [200, 200, 200]
    retry_after = assert_refused(refused, 429, "ip_rate")
    assert retry_after <= 60 and "this address" in refused.json["detail"]
    assert one.emulator.call_count() == calls + 2  # the other address's turn and the suggestions, not the refused
    assert other_address.status_code == 200 and other_route.status_code == 200
    one.clock.advance(retry_after)
    assert from_address(one, "203.0.113.9", message="Hello").status_code == 200


def test_per_session_limit_is_shared_by_two_workers_whatever_the_address(make_harness) -> None:
    one, two = make_harness(CHAT_SESSION_REQUESTS_PER_MINUTE="2"), make_harness(CHAT_SESSION_REQUESTS_PER_MINUTE="2")
    visitor = Visitor(one)
    visitor.say("Hello, my tap is leaking")
    token = visitor.session

    second = from_address(one, "203.0.113.1", session=token, message="I am in Akwa")
    third = from_address(two, "203.0.113.2", session=token, message="It is urgent")
    calls = one.emulator.call_count()
    fourth = from_address(two, "203.0.113.3", session=token, message="Yes")
    newcomer = from_address(two, "203.0.113.3", message="Hello")

    assert second.status_code == 200 and third.status_code == 200
    assert_refused(fourth, 429, "session_rate")
    assert "this chat session" in fourth.json["detail"]
    assert newcomer.status_code == 200 and one.emulator.call_count() == calls + 1


@pytest.mark.parametrize(
    ("hops", "forwarded", "answered"),
    [
        (0, ["198.51.100.1", "198.51.100.2", "198.51.100.3"], [200, 200, 429]),  # X-Forwarded-For is ignored
        (1, ["198.51.100.1", "198.51.100.2", "198.51.100.3"], [200, 200, 200]),  # one client per value
        (1, ["6.6.6.1, 198.51.100.1", "6.6.6.2, 198.51.100.1", "198.51.100.1"], [200, 200, 429]),  # spoofing
    ],
    ids=["no-proxy", "one-proxy", "one-proxy-spoofed"],
)
def test_the_address_comes_from_x_forwarded_for_only_through_trusted_proxies(
    make_harness, hops: int, forwarded: list[str], answered: list[int]
) -> None:
    harness = make_harness(CHAT_IP_REQUESTS_PER_MINUTE="2", TRUSTED_PROXY_HOPS=str(hops))

    statuses = [
        from_address(harness, "10.0.0.5", headers={"X-Forwarded-For": value}, message="Hello").status_code
        for value in forwarded
    ]

    assert statuses == answered


def test_daily_budget_refuses_chat_and_suggestions_but_never_whatsapp(make_harness) -> None:
    harness = make_harness(LLM_DAILY_BUDGET_USD="0.001")
    visitor = Visitor(harness)
    assert visitor.say("Hello, my tap is leaking").status_code == 200  # costs ~0.0011 USD: the budget is spent
    spent = harness.runtime.store.db.execute("select sum(cost_usd) from llm_calls").fetchone()[0]
    assert spent >= 0.001
    calls = harness.emulator.call_count()

    chat = visitor.say("I am in Akwa")
    suggestions = visitor.suggest()
    whatsapp = harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()

    for refused in (chat, suggestions):
        retry_after = assert_refused(refused, 429, "daily_budget")
        assert 86000 < retry_after <= 86400 + 60  # when the call that spent it leaves the 24 h window (clocks apart)
        assert "LLM_DAILY_BUDGET_USD" in refused.json["detail"]
    assert whatsapp.status_code == 200
    assert harness.emulator.call_count() == calls + 1  # the WhatsApp turn, nothing for the refused ones
    [reply] = harness.sent(CUSTOMER)
    assert reply != HOLDING_REPLY["fr"] and "plomberie" in reply  # answered by a model, as ever


def test_with_every_model_slot_taken_chat_is_refused_at_once_while_twilio_still_acks(make_harness) -> None:
    harness = make_harness(CHAT_MODEL_SLOTS="1")
    release = threading.Event()

    def slow_model(request) -> str:
        release.wait(10)
        return djobea_model_reply(request)

    harness.emulator.set_responder("claude", slow_model)
    held: list = []
    holder = threading.Thread(target=lambda: held.append(harness.app.test_client().post(CHAT, json=FIRST_TURN)))
    holder.start()
    try:
        assert harness.emulator.wait_for_calls(1), "the first chat never reached the model"
        busy_chat = chat_as(harness, user="visitor", message="Hello")
        busy_suggestions = suggest(harness, message="Hello")
        webhook = harness.whatsapp("Bonjour")
        calls_while_busy = harness.emulator.call_count()
    finally:
        release.set()
        holder.join(10)

    assert_refused(busy_chat, 503, "busy")
    assert_refused(busy_suggestions, 503, "busy")
    assert webhook.status_code == 200 and harness.inbound_statuses() == ["pending"]
    assert calls_while_busy == 1
    assert held[0].status_code == 200
    assert chat_as(harness, user="visitor", message="Hello").status_code == 200  # the slot is free again


# --- settings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHAT_MODEL_SLOTS", "0"),
        ("CHAT_MODEL_SLOTS", "two"),
        ("CHAT_SESSION_REQUESTS_PER_MINUTE", "0"),
        ("CHAT_IP_REQUESTS_PER_MINUTE", "1.5"),
        ("LLM_DAILY_BUDGET_USD", "-1"),
        ("LLM_DAILY_BUDGET_USD", "nan"),
        ("TRUSTED_PROXY_HOPS", "-1"),
    ],
)
def test_a_bad_limit_setting_stops_the_app_naming_the_variable(make_harness, name: str, value: str) -> None:
    with pytest.raises(LimitSettingsError, match=name):
        make_harness(**{name: value})


def test_limit_defaults() -> None:
    assert LimitSettings.from_env({}) == LimitSettings(
        model_slots=2, session_per_minute=10, ip_per_minute=30, daily_budget_usd=10.0, trusted_proxy_hops=0
    )


def test_the_days_spend_follows_the_window_as_it_moves(store) -> None:
    clock = FakeClock(1_000_000.0)
    spend = DailySpend(store, clock)

    def paid(started_at: float, cost: float) -> None:  # the row the ledger writes when an attempt ends
        store.db["llm_calls"].insert(
            {
                "id": uuid.uuid4().hex,
                "started_at": started_at,
                "purpose": "chat",
                "outcome": "success",
                "cost_usd": cost,
            }
        )
        store.db.conn.commit()

    def full_sum() -> float:
        since = clock() - 86400
        return store.db.execute("select total(cost_usd) from llm_calls where started_at >= ?", [since]).fetchone()[0]

    for hours_ago in (30, 23.9, 12, 1, 0.01):
        paid(clock() - hours_ago * 3600, 0.5)
    observed = [spend.last_24h()]
    for step_s, late_row in [(600, None), (3000, 30), (4 * 3600, 200), (20, None), (7 * 3600, None)]:
        clock.advance(step_s)
        if late_row is not None:  # written at the end of an attempt that started late_row seconds ago
            paid(clock() - late_row, 0.25)
        observed.append(spend.last_24h())
        assert observed[-1] == pytest.approx(full_sum())
    assert observed[0] == pytest.approx(2.0) and observed[-1] < observed[0]


ADMIN_TOKEN = "admin-token-of-thirty-two-chars!"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/llm/reset-failures", {}),
        ("/api/llm/providers/openai/disable", {}),
    ],
)
def test_admin_writes_on_an_immutable_database_are_503_never_500(
    make_harness: Callable[..., Harness], path: str, body: dict
) -> None:
    """Attack run finding: admin routes that write answered 500 with a traceback when the store refused."""
    harness = make_harness(ADMIN_API_TOKEN=ADMIN_TOKEN)
    files = [harness.runtime.store.path, harness.runtime.store.path.with_name("bot.db-wal")]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", *map(str, files)]).returncode != 0:
        pytest.skip("chattr cannot make the database immutable here")
    try:
        response = harness.client.post(path, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        webhook = harness.whatsapp("Bonjour")
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=False)

    assert response.status_code == 503 and response.headers["Retry-After"]
    assert webhook.status_code == 503 and webhook.headers["Retry-After"]  # Twilio is asked to come back
    # Once the disk is writable again the same thread writes again (its read-only connection was dropped).
    again = harness.client.post(path, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert again.status_code == 200
    assert harness.whatsapp("Bonjour").status_code == 200


def test_a_session_unused_for_the_retention_period_is_forgotten(harness: Harness) -> None:
    from bot.admin.retention import delete_old_rows

    visitor = Visitor(harness, "dora")
    visitor.say("Bonjour, ma prise ne marche plus")
    store = harness.runtime.store

    kept = delete_old_rows(store, 90, clock=lambda: harness.clock() + 89 * 86400)
    assert kept["chat_sessions"] == 0
    forgotten = delete_old_rows(store, 90, clock=lambda: harness.clock() + 91 * 86400)
    assert forgotten["chat_sessions"] == 1
    assert visitor.say("Je suis à Akwa").status_code == 401  # its token is no longer known
