"""Every provider down: one holding reply in the customer's language, the message kept, the real answer
sent once a provider answers again (the worker driven by hand, backoff on a fake clock)."""

from __future__ import annotations

import pytest

from bot.conversation.fixed_replies import HOLDING_REPLY
from tests.support import Harness

PROVIDERS = ("claude", "gemini", "openai")


def all_down(harness: Harness, fault: str = "server_error") -> None:
    for provider in PROVIDERS:
        harness.emulator.set_fault(provider, fault)


def all_up(harness: Harness) -> None:
    for provider in PROVIDERS:
        harness.emulator.clear_fault(provider)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Bonjour, j'ai une fuite d'eau dans la cuisine", "fr"),
        ("Hello, my fridge is not working since yesterday", "en"),
        ("Abeg, light don go for my house since morning", "pcm"),
    ],
)
def test_holding_reply_then_real_answer_after_recovery(harness: Harness, text: str, language: str) -> None:
    all_down(harness)
    harness.whatsapp(text)

    harness.drain()

    assert harness.sent() == [HOLDING_REPLY[language]]
    assert harness.inbound_statuses() == ["pending"]
    harness.drain()  # not due yet: nothing happens, no second holding reply
    assert len(harness.sent()) == 1

    harness.clock.advance(10)  # past the backoff, providers still down
    harness.drain()
    assert len(harness.sent()) == 1  # still one holding reply for this message

    all_up(harness)
    harness.clock.advance(60)
    harness.drain()

    sent = harness.sent()
    assert len(sent) == 2 and sent[0] == HOLDING_REPLY[language]
    assert sent[1] != HOLDING_REPLY[language]
    assert harness.inbound_statuses() == ["done"]
    kinds = [r[0] for r in harness.runtime.store.db.execute("select kind from outbound_messages order by id")]
    assert kinds == ["holding", "reply"]


def test_messages_written_during_the_outage_are_all_answered_in_order(harness: Harness) -> None:
    all_down(harness, "rate_limited")
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.whatsapp("Je suis à Akwa")
    harness.drain()
    assert harness.sent() == [HOLDING_REPLY["fr"]]  # one holding reply, not one per message

    all_up(harness)
    harness.clock.advance(120)
    harness.drain()
    assert len(harness.sent()) == 1  # rate-limited providers cool down (shared health): skipped, not called

    for provider in PROVIDERS:  # what a passing probe does when the cooldown is over
        harness.runtime.engine.llm.health.reset(provider, actor="probe")
    harness.clock.advance(120)
    harness.drain()

    sent = harness.sent()
    assert len(sent) == 3
    assert "quartier" in sent[1]  # answer to the first message asks where
    assert "urgent" in sent[2]  # the second (location given) moves on to urgency
    assert harness.inbound_statuses() == ["done", "done"]


def test_unparseable_output_everywhere_counts_as_down(harness: Harness) -> None:
    harness.emulator.set_responder(None, lambda request: "<html>Sign in to the network</html>")
    harness.whatsapp("Hello, my tap is leaking badly")

    harness.drain()

    assert harness.sent() == [HOLDING_REPLY["en"]]
    rejected = harness.runtime.store.db.execute(
        "select count(*) from llm_calls where error_kind = 'bad_output'"
    ).fetchone()[0]
    assert rejected == 3  # each provider's reply was parsed, rejected, and the next one asked


def test_a_message_held_while_every_provider_cools_is_tried_again_when_the_first_cooldown_ends(
    harness: Harness,
) -> None:
    """Not a whole backoff later: once no provider could even be asked, the retry follows the cooldowns."""
    for provider in PROVIDERS:
        harness.emulator.set_fault(provider, "rate_limited", retry_after=3)
    harness.whatsapp("Bonjour, j'ai une fuite d'eau dans la cuisine")
    harness.drain()  # each provider asked once: 429, all cooling for 3 s; first backoff (5 s)
    harness.clock.advance(5)
    harness.drain()  # due again: none may be asked (all cooling), so no call at all

    [(attempts, wait)] = harness.runtime.store.db.execute(
        "select attempts, next_attempt_at - ? from inbound_messages", [harness.clock.now]
    ).fetchall()
    assert attempts == 2 and len(harness.sent()) == 1  # one holding reply
    assert 1.0 <= wait <= 4.0  # the cooldown's end (at most 3 s away) and a second for its probe; the backoff: 10 s
