"""One bad message must not silence a customer: a message every provider refuses for what it says, one the
model never answers usably, one that breaks the worker every time and a stored row nobody can read are all
given up (failed, with the reason), and the customer's later messages are answered."""

from __future__ import annotations

import pytest

from bot.conversation.fixed_replies import HOLDING_REPLY, NOT_PROCESSED_REPLY
from bot.inbound import InboundMessage, InboundQueue
from bot.sandbox.scripted_model import djobea_model_reply
from bot.whatsapp.worker import ERROR_RETRY_MAX_S
from tests.support import CUSTOMER, Harness

PROVIDERS = ("claude", "gemini", "openai")


def inbound_rows(harness: Harness) -> list[dict]:
    return list(harness.runtime.store.db.query("select * from inbound_messages order by id"))


def history_text(harness: Harness) -> str:
    return "\n".join(r[0] for r in harness.runtime.store.db.execute("select content from conversation_messages"))


@pytest.mark.parametrize(
    ("faults", "text", "language"),
    [
        (("content_policy",) * 3, "Bonjour, j'ai une fuite d'eau", "fr"),
        (("context_too_long",) * 3, "Hello, my fridge is not working", "en"),
        (("bad_request", "context_too_long", "content_policy"), "Abeg, light don go for my house", "pcm"),
    ],
    ids=["content_policy", "context_too_long", "mixed"],
)
def test_message_every_provider_refuses_gets_a_rephrase_request_and_the_next_one_is_answered(
    harness: Harness, faults: tuple[str, ...], text: str, language: str
) -> None:
    for provider, fault in zip(PROVIDERS, faults, strict=True):
        harness.emulator.set_fault(provider, fault)
    harness.whatsapp(text)

    harness.drain()

    assert harness.sent() == [NOT_PROCESSED_REPLY[language]]
    [refused] = inbound_rows(harness)
    assert refused["status"] == "failed" and all(fault in refused["last_error"] for fault in faults)
    assert harness.emulator.call_count() == 3  # once per provider: asking again would be refused again

    for provider in PROVIDERS:
        harness.emulator.clear_fault(provider)
    harness.whatsapp("Je suis à Akwa")
    harness.drain()

    assert harness.inbound_statuses() == ["failed", "done"]
    assert len(harness.sent()) == 2
    assert text not in history_text(harness)  # the refused words are not sent to the model again


def test_message_never_answered_usably_is_given_up_a_window_after_its_own_receipt(harness: Harness) -> None:
    def model(request) -> str:  # every provider's output for this one message is unusable, forever
        if "coule-coule" in request.messages[-1]["content"]:
            return "<html>Sign in to the network</html>"
        return djobea_model_reply(request)

    harness.emulator.set_responder(None, model)
    harness.whatsapp("Bonjour, mon robinet coule-coule")
    harness.drain()
    for _ in range(30):  # the customer writes every hour, which keeps WhatsApp's window open
        harness.clock.advance(3600)
        harness.whatsapp("Je suis à Akwa")
        harness.drain()

    rows = inbound_rows(harness)
    assert rows[0]["status"] == "failed" and "within 24 hours of its receipt" in rows[0]["last_error"]
    assert [r["status"] for r in rows[1:]] == ["done"] * 30
    assert harness.sent()[0] == HOLDING_REPLY["fr"]  # the given-up message had its holding reply, nothing more
    assert len(harness.sent()) == 31


def test_message_that_breaks_the_worker_every_time_is_given_up_after_max_errors(harness: Harness) -> None:
    # Fault injected in SQLite, as a constraint would: storing this message's turn fails on every attempt.
    harness.runtime.store.db.execute(
        "create trigger poison before insert on conversation_messages when new.content like '%#poison%'"
        " begin select raise(abort, 'poisoned message'); end"
    )
    harness.whatsapp("Bonjour #poison")
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")

    for _ in range(10):
        harness.drain()
        harness.clock.advance(ERROR_RETRY_MAX_S)

    first, second = inbound_rows(harness)
    assert first["status"] == "failed" and first["errors"] == 5
    assert "gave up after 5 errors" in first["last_error"] and "poisoned message" in first["last_error"]
    assert second["status"] == "done"
    sent = harness.sent()
    assert sent[0] == NOT_PROCESSED_REPLY["fr"] and "quartier" in sent[1] and len(sent) == 2


def test_errors_before_the_limit_are_retried_with_a_growing_wait(make_harness) -> None:
    harness = make_harness(INBOUND_MAX_ERRORS="3")
    harness.runtime.store.db.execute(
        "create trigger poison before insert on conversation_messages"
        " begin select raise(abort, 'database refuses every turn'); end"
    )
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    waits = []
    for _ in range(3):
        harness.drain()
        row = inbound_rows(harness)[0]
        waits.append(row["next_attempt_at"] - harness.clock())
        harness.clock.advance(ERROR_RETRY_MAX_S)

    assert [round(w) for w in waits[:2]] == [30, 60]
    assert harness.inbound_statuses() == ["failed"]


def test_a_stored_row_nobody_can_read_does_not_hold_back_the_queue(store) -> None:
    queue = InboundQueue(store)
    queue.enqueue(InboundMessage(message_sid="SM1", customer_id=CUSTOMER, body="Bonjour"))
    queue.enqueue(InboundMessage(message_sid="SM2", customer_id="+237677000002", body="Bonjour"))
    store.db.execute("update inbound_messages set media = '{not json' where message_sid = 'SM1'")
    store.db.conn.commit()

    claim = queue.claim("w1", 60)

    assert claim is not None and claim.message.message_sid == "SM2"
    status, error = store.db.execute("select status, last_error from inbound_messages where id = 1").fetchone()
    assert status == "failed" and "unreadable stored message" in error
