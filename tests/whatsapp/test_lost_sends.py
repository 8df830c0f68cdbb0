"""A send whose answer was lost (row left ``in_flight``) is settled by asking Twilio, and only a message of its
own confirms it: one Twilio created in or after the second its attempt began, that no other row holds. So an
earlier identical reply ("Merci ...") never passes for it: a send Twilio never got is sent again, one it took
is never sent twice. The real twilio client talks to the emulated Twilio, which dates messages on the same
fake clock as the sender (``set_clock``) and loses requests or answers on demand (``request_lost``,
``answer_lost``)."""

from __future__ import annotations

import json
import threading

import pytest

from bot.messaging.outbox import OutboundMessage, Outbox
from bot.messaging.sender import SendPolicy, WhatsAppSender
from bot.messaging.twilio_gateway import TwilioGateway
from bot.sandbox import ProviderEmulator
from bot.store import Store
from tests.support import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, CUSTOMER, FakeClock

SECOND = 1_700_000_000.0  # a whole second on the fake clock: Twilio's date_created drops what follows it
MERCI = "Merci, nous avons bien reçu votre message."
TO = f"whatsapp:{CUSTOMER}"


def no_fence(db) -> None:
    """These tests hold no inbound lease."""


class Lane:
    """One outbox, sender and gateway on a fake clock that the emulated Twilio dates its messages by."""

    def __init__(self, store: Store, emulator: ProviderEmulator, now: float) -> None:
        self.clock = FakeClock(now)
        self.twilio = emulator.twilio
        self.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
        self.twilio.set_clock(self.clock)
        # A lost answer costs the client its timeout: keep it short.
        self.gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, api_base=emulator.base_url, timeout_s=0.3)
        self.outbox = Outbox(store, self.clock)
        self.sender = WhatsAppSender(self.outbox, self.gateway, None, SendPolicy(), self.clock, lambda s: None)
        self.store = store

    def reply(self, inbound_id: int, body: str = MERCI) -> OutboundMessage:
        with self.store.immediate() as db:
            self.outbox.add(db, key=f"{inbound_id}:reply", inbound_id=inbound_id, customer_id=CUSTOMER, to_number=TO,
                            kind="reply", bodies=[body])  # fmt: skip
        [row] = self.outbox.for_inbound(inbound_id)
        return row

    def deliver(self, inbound_id: int):
        return self.sender.deliver(self.outbox.for_inbound(inbound_id), no_fence)

    def row(self, inbound_id: int) -> OutboundMessage:
        [row] = self.outbox.for_inbound(inbound_id)
        return row

    def twilio_sids(self) -> list[str]:
        return [m["sid"] for m in self.twilio.messages(TO)]


@pytest.fixture
def lane(store: Store, emulator: ProviderEmulator) -> Lane:
    return Lane(store, emulator, SECOND + 0.2)


def start_lost_send(lane: Lane, inbound_id: int, fault: str) -> None:
    """Send ``inbound_id``'s reply with its request or its answer lost: the row is left in_flight."""
    lane.twilio.set_fault(fault, times=1)
    lane.reply(inbound_id)
    delivery = lane.deliver(inbound_id)
    assert not delivery.settled and lane.row(inbound_id).status == "in_flight"


def let_in_flight_window_pass(lane: Lane) -> None:
    lane.clock.advance(SendPolicy().in_flight_grace_s + 1)


def lose_send(lane: Lane, inbound_id: int, fault: str) -> None:
    start_lost_send(lane, inbound_id, fault)
    let_in_flight_window_pass(lane)


# --- (a) a send Twilio never got is sent again ----------------------------------------------------------------


def test_earlier_identical_reply_in_the_same_second_does_not_confirm_a_send_twilio_never_got(lane: Lane) -> None:
    lane.reply(1)
    assert lane.deliver(1).settled  # Merci #1 reaches Twilio, dated SECOND
    lane.clock.advance(0.5)  # Merci #2 starts in that same second, so the date alone cannot tell them apart

    lose_send(lane, 2, "request_lost")
    assert len(lane.twilio.messages()) == 1
    assert lane.deliver(2).settled

    first, second = lane.row(1), lane.row(2)
    assert len(lane.twilio_sids()) == 2  # sent again: the customer gets both replies
    assert [first.twilio_sid, second.twilio_sid] == lane.twilio_sids()
    assert (second.status, second.attempts) == ("queued", 2)


def test_unclaimed_identical_message_from_an_earlier_second_does_not_confirm_a_send(lane: Lane) -> None:
    # Twilio holds an identical message no row claims (sent by hand, or before this database), 0.3 s earlier
    # but in the previous second: it cannot be this send's.
    lane.clock.now = SECOND - 0.1
    assert lane.gateway.send(CUSTOMER, MERCI).sid
    lane.clock.now = SECOND + 0.2

    lose_send(lane, 1, "request_lost")
    assert lane.deliver(1).settled

    [stray, resent] = lane.twilio_sids()
    assert lane.row(1).twilio_sid == resent != stray


# --- (b) a send Twilio took is confirmed, never sent twice ------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.999])
def test_send_twilio_took_is_confirmed_when_dated_in_the_second_its_attempt_began(lane: Lane, fraction: float) -> None:
    lane.clock.now = SECOND + fraction  # Twilio dates it SECOND: up to a second *before* the attempt began

    lose_send(lane, 1, "answer_lost")
    assert lane.deliver(1).settled

    [sid] = lane.twilio_sids()  # found, not sent again
    assert (lane.row(1).status, lane.row(1).twilio_sid) == ("queued", sid)


def test_send_twilio_took_is_confirmed_past_an_earlier_identical_reply(lane: Lane) -> None:
    lane.reply(1)
    assert lane.deliver(1).settled
    lane.clock.advance(0.3)  # same second again: both Merci are dated SECOND

    lose_send(lane, 2, "answer_lost")
    assert lane.deliver(2).settled

    [first_sid, second_sid] = lane.twilio_sids()  # still two: nothing sent twice
    assert (lane.row(1).twilio_sid, lane.row(2).twilio_sid) == (first_sid, second_sid)
    assert lane.row(2).attempts == 1


def test_dropped_holding_reply_is_matched_the_same_way(lane: Lane) -> None:
    """``settle_dropped`` never sends; it records the row accepted only if Twilio has a message of its own."""
    lane.reply(1)
    assert lane.deliver(1).settled
    lose_send(lane, 2, "request_lost")

    delivery = lane.sender.settle_dropped(lane.outbox.for_inbound(2), "superseded by the reply")

    assert delivery.settled and len(lane.twilio_sids()) == 1
    assert (lane.row(2).status, lane.row(2).twilio_sid) == ("failed", None)


# --- look-alike rows resolved together -------------------------------------------------------------------------


def test_look_alike_rows_looked_up_together_take_different_sids(lane: Lane) -> None:
    start_lost_send(lane, 1, "answer_lost")
    start_lost_send(lane, 2, "answer_lost")  # in the same second
    let_in_flight_window_pass(lane)
    first, second = lane.row(1), lane.row(2)
    # The worst interleaving of two workers: both read Twilio's list before either records anything.
    first_seen = lane.gateway.find_sent(CUSTOMER, MERCI, first.send_started_at)
    second_seen = lane.gateway.find_sent(CUSTOMER, MERCI, second.send_started_at)
    assert first_seen == second_seen == lane.twilio_sids()  # the same second: both candidates for both rows

    taken = [
        lane.outbox.confirm_sent(second.id, second.attempts, second_seen),
        lane.outbox.confirm_sent(first.id, first.attempts, first_seen),
    ]

    assert sorted(taken) == sorted(lane.twilio_sids())  # one each, none sent again
    assert {lane.row(1).twilio_sid, lane.row(2).twilio_sid} == set(lane.twilio_sids())


def test_two_workers_resolving_look_alike_rows_at_once_never_share_a_sid(lane: Lane) -> None:
    start_lost_send(lane, 1, "answer_lost")
    start_lost_send(lane, 2, "request_lost")  # in the same second; only the first reached Twilio
    let_in_flight_window_pass(lane)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(inbound_id: int) -> None:
        try:
            start.wait(timeout=5)
            lane.deliver(inbound_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(inbound_id,)) for inbound_id in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    sids = lane.twilio_sids()
    assert len(sids) == 2  # whichever row took the one message, the other was sent again
    assert {lane.row(1).twilio_sid, lane.row(2).twilio_sid} == set(sids)
    assert {lane.row(1).status, lane.row(2).status} == {"queued"}


def test_a_sid_another_row_holds_is_not_confirmed_and_never_raises(lane: Lane) -> None:
    lane.reply(1)
    assert lane.deliver(1).settled
    [held] = lane.twilio_sids()
    row = lane.reply(2)
    attempt = lane.outbox.mark_in_flight(row.id, no_fence)

    assert lane.outbox.mark_accepted(row.id, attempt, held, "queued") is False  # the unique index said no
    assert lane.outbox.confirm_sent(row.id, attempt, [held]) is None
    assert (lane.row(2).status, lane.row(2).twilio_sid) == ("in_flight", None)  # left to be looked up again

    # A status callback for that sid naming row 2 in its URL is applied to the row that holds it.
    assert lane.outbox.record_status(held, "delivered", None, None, outbound_id=row.id)
    assert (lane.row(1).status, lane.row(2).twilio_sid) == ("delivered", None)


def test_a_send_whose_sid_another_row_took_meanwhile_is_sent_again(lane: Lane) -> None:
    """Row 2's lookup ran while row 1's call was still out and took row 1's message (the same text, dated after
    row 2 began): row 1's late answer then cannot be recorded, and row 1 is sent again once looked up."""
    lose_send(lane, 2, "request_lost")
    row = lane.reply(1)
    attempt = lane.outbox.mark_in_flight(row.id, no_fence)
    outcome = lane.gateway.send(CUSTOMER, MERCI)  # row 1's call: Twilio takes it...
    assert lane.deliver(2).settled  # ...row 2's lookup claims that message before row 1's answer is recorded

    assert lane.outbox.mark_accepted(row.id, attempt, outcome.sid, "queued") is False
    lane.clock.advance(SendPolicy().in_flight_grace_s + 1)
    assert lane.deliver(1).settled

    sids = lane.twilio_sids()
    assert len(sids) == 2 and [lane.row(2).twilio_sid, lane.row(1).twilio_sid] == sids


# --- through the webhook and the worker --------------------------------------------------------------------------


def merci_model(request) -> str:
    return json.dumps({"language": "fr", "reply": MERCI, "service_type": "plomberie"})


@pytest.mark.parametrize("fault", ["request_lost", "answer_lost"])
def test_customer_writing_the_same_thing_twice_gets_one_reply_per_message(make_harness, fault: str) -> None:
    harness = make_harness(responder=merci_model, TWILIO_TIMEOUT_S="0.3")
    harness.emulator.twilio.set_clock(harness.clock)
    harness.whatsapp("Bonjour, fuite d'eau")
    harness.drain()
    assert harness.sent() == [MERCI]

    harness.emulator.twilio.set_fault(fault, times=1)
    harness.whatsapp("Bonjour, fuite d'eau")
    harness.drain()
    harness.clock.advance(60)
    harness.drain()

    rows = list(harness.runtime.store.db.query("select status, twilio_sid from outbound_messages order by id"))
    sids = [m["sid"] for m in harness.emulator.twilio.messages()]
    assert harness.sent() == [MERCI, MERCI]  # re-sent if Twilio never got it, once only if it did
    assert [r["twilio_sid"] for r in rows] == sids and [r["status"] for r in rows] == ["queued", "queued"]
    assert harness.inbound_statuses() == ["done", "done"]
