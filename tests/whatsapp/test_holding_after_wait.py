"""A customer left waiting HOLDING_REPLY_AFTER_S gets the holding reply once, then the answer: the sweep runs
off the workers (they may all be busy), on a fake clock, against the emulated Twilio."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.conversation.fixed_replies import HOLDING_REPLY
from bot.whatsapp.settings import WhatsAppSettings, WhatsAppSettingsError
from tests.support import Harness

PIDGIN = "Abeg, light don go for my house since morning"


def kinds(harness: Harness) -> list[str]:
    return [r[0] for r in harness.runtime.store.db.execute("select kind from outbound_messages order by id")]


def test_a_message_waiting_past_the_threshold_gets_the_holding_reply_then_the_answer(harness: Harness) -> None:
    holding = harness.runtime.holding
    assert holding is not None and holding.after_s == 8  # the default
    harness.whatsapp(PIDGIN)  # no worker takes it: they are all busy elsewhere

    harness.clock.advance(7.9)
    assert holding.sweep() == 0 and harness.sent() == []
    harness.clock.advance(0.2)
    assert holding.sweep() == 1
    assert harness.sent() == [HOLDING_REPLY["pcm"]]
    assert holding.sweep() == 0  # once per message

    harness.drain()

    sent = harness.sent()
    assert len(sent) == 2 and sent[0] == HOLDING_REPLY["pcm"] and sent[1] != HOLDING_REPLY["pcm"]
    assert kinds(harness) == ["holding", "reply"] and harness.inbound_statuses() == ["done"]


def test_a_message_answered_in_time_gets_no_holding_reply(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()
    harness.clock.advance(60)

    assert harness.runtime.holding is not None and harness.runtime.holding.sweep() == 0
    assert len(harness.sent()) == 1 and kinds(harness) == ["reply"]


def test_an_answer_recorded_first_keeps_the_holding_reply_from_being_sent(harness: Harness) -> None:
    """The sweep saw the message waiting, but the worker recorded the answer before the holding reply left."""
    holding = harness.runtime.holding
    assert holding is not None
    harness.whatsapp("Hello, my fridge is not working")
    harness.clock.advance(9)
    due = holding.due()
    assert len(due) == 1
    harness.drain()  # answered meanwhile

    assert holding.sweep(due) == 0  # acting on what it read before the answer
    assert len(harness.sent()) == 1 and kinds(harness) == ["reply"]


def test_two_processes_sweeping_send_one_holding_reply(make_harness: Callable[..., Harness]) -> None:
    first, second = make_harness(), make_harness()  # two apps on one database, as two processes
    first.whatsapp("Bonjour, ma télé ne s'allume plus")
    first.clock.advance(30)
    assert first.runtime.holding is not None and second.runtime.holding is not None
    due = first.runtime.holding.due()  # both read it before either sent

    assert first.runtime.holding.sweep(due) + second.runtime.holding.sweep(due) == 1
    assert first.sent() == [HOLDING_REPLY["fr"]]


def test_the_threshold_is_configurable_and_zero_turns_it_off(make_harness: Callable[..., Harness]) -> None:
    assert make_harness(HOLDING_REPLY_AFTER_S="3").runtime.holding.after_s == 3
    off = make_harness(HOLDING_REPLY_AFTER_S="0")
    assert off.runtime.holding is None
    off.whatsapp("Bonjour")
    off.clock.advance(3600)
    off.drain()
    assert kinds(off) == ["reply"]


def test_a_bad_threshold_is_a_configuration_error() -> None:
    for bad in ("-1", "nan", "soon"):
        with pytest.raises(WhatsAppSettingsError, match="HOLDING_REPLY_AFTER_S"):
            WhatsAppSettings.from_env({"HOLDING_REPLY_AFTER_S": bad})
