"""A confirmed request offered to artisans in batches until one accepts: who is offered, what they read, what
the customer gets, timeouts, refusals and exhaustion. Real store, real outbox and sender, emulated Twilio."""

from __future__ import annotations

import pytest

from bot.dispatch.texts import OFFER_TEMPLATE
from bot.inbound import InboundQueue, LeaseLost
from tests.dispatch.conftest import CUSTOMER, STAFF, World


def test_a_confirmed_request_is_offered_to_the_batch_of_its_trade_and_quartier(world: World) -> None:
    world.dispatch.settings = world.dispatch.settings.__class__(batch_size=2)
    a = world.artisan("Alain", "+237690000001", ["plomberie"], ["Akwa"])
    world.artisan("Bruno", "+237690000002", ["plomberie"], ["Bonapriso"])  # other quartier
    world.artisan("Carine", "+237690000003", ["électricité"], ["Akwa"])  # other trade
    d = world.artisan("Didier", "+237690000004", ["plombier", "électroménager"], [])  # the whole city
    e = world.artisan("Eric", "+237690000005", ["plomberie"], ["akwa"])
    world.store.db.execute("update artisans set last_offered_at = ? where id = ?", [world.clock() - 60, a.id])
    world.store.db.execute("update artisans set last_offered_at = ? where id = ?", [world.clock() - 600, e.id])
    world.store.db.conn.commit()
    request_id = world.confirmed_request(location="Carrefour de l'hôtel Akwa Palace, Akwa")

    assert world.dispatch.start(request_id) == "offering"

    # Never offered (Didier) first, then the least recently offered (Eric); Alain waits for the next batch.
    assert world.offer_statuses(request_id) == {"Didier": "offered", "Eric": "offered"}
    assert world.dispatch_state(request_id)["quartier"] == "Akwa"
    offer = world.sent("+237690000004")[-1]
    assert offer.startswith(f"Djobea : nouvelle demande n°{request_id} – plomberie à Akwa.")
    assert "fuite d'eau sous l'évier" in offer and "urgent" in offer and "OUI" in offer
    assert CUSTOMER not in offer and "699" not in offer
    assert world.sent("+237690000001") == [] and world.sent("+237690000002") == [] == world.sent("+237690000003")
    assert world.dispatch.directory.get(d.id).last_offered_at == world.clock()


def test_an_offer_never_shows_a_number_the_customer_typed(world: World) -> None:
    world.artisan("Alain", "+237690000001")
    request_id = world.confirmed_request(description="fuite, appelez-moi au 6 99 00 00 01 ou +237 699000001")

    world.dispatch.start(request_id)

    offer = world.sent("+237690000001")[0]
    assert "699" not in offer and "[numéro masqué]" in offer


def test_first_acceptance_wins_customer_and_artisan_get_each_others_details(world: World) -> None:
    world.artisan("Alain Plombier", "+237690000001")
    world.artisan("Bruno", "+237690000002")
    world.artisan("Carine", "+237690000003")
    request_id = world.confirmed_request(language="pcm", location="Ndokoti, near the Total")
    world.dispatch.start(request_id)

    reply = world.answer("+237690000002", "I go take am")

    assert reply.outcome == "accepted" and reply.delivery.settled
    request = world.request(request_id)
    assert (
        request["status"] == "assigned"
        and request["artisan_id"] == world.dispatch.directory.find_by_number("+237690000002").id
    )
    assert world.offer_statuses(request_id) == {"Alain Plombier": "taken", "Bruno": "accepted", "Carine": "taken"}
    won = world.sent("+237690000002")[-1]
    assert won.startswith("C'est pour vous !") and CUSTOMER in won and "Ndokoti" in won
    customer = world.sent(CUSTOMER)
    assert len(customer) == 1 and "Bruno (+237690000002)" in customer[0] and "go handle your request" in customer[0]
    for other in ("+237690000001", "+237690000003"):
        assert world.sent(other)[-1].startswith(f"La demande n°{request_id} (plomberie, Ndokoti) a déjà été prise")
    assert world.dispatch_state(request_id)["state"] == "assigned"

    late = world.answer("+237690000001", "OUI")
    assert late.outcome == "too_late" and "déjà été prise" in world.sent("+237690000001")[-1]
    again = world.answer("+237690000002", "oui")
    assert again.outcome == "already_yours" and CUSTOMER in world.sent("+237690000002")[-1]
    assert world.request(request_id)["artisan_id"] == world.dispatch.directory.find_by_number("+237690000002").id
    assert len(world.sent(CUSTOMER)) == 1


def test_a_button_payload_names_the_offer(world: World) -> None:
    world.artisan("Alain", "+237690000001")
    first = world.confirmed_request(customer="+237699000011")
    second = world.confirmed_request(customer="+237699000012")
    world.dispatch.start(first)
    world.dispatch.start(second)
    offer_id = world.offers(second)[0]["id"]

    unclear = world.answer("+237690000001", "OUI")  # two open offers: which one?
    assert unclear.outcome == "which" and f"n°{first}, n°{second}" in unclear.reply

    accepted = world.answer("+237690000001", "OUI", ButtonPayload=f"accept:{offer_id}")
    assert accepted.outcome == "accepted" and accepted.request_id == second
    declined = world.answer("+237690000001", f"non {first}")
    assert declined.outcome == "declined" and declined.request_id == first
    assert world.request(first)["status"] == "confirmed" and world.request(second)["status"] == "assigned"


def test_no_acceptance_in_time_offers_the_next_batch_then_staff_and_customer_are_told(make_world) -> None:
    world: World = make_world(batch_size=2, timeout_s=600, staff_whatsapp=STAFF)
    for index in range(1, 4):
        world.artisan(f"Artisan {index}", f"+23769000000{index}")
    request_id = world.confirmed_request(language="en")
    world.dispatch.start(request_id)
    assert world.offer_statuses(request_id) == {"Artisan 1": "offered", "Artisan 2": "offered"}

    world.clock.advance(599)
    assert world.dispatch.tick().advanced == []
    world.clock.advance(1)
    assert world.dispatch.tick().advanced == [request_id]
    assert world.offer_statuses(request_id) == {"Artisan 1": "offered", "Artisan 2": "offered", "Artisan 3": "offered"}
    assert [o["batch"] for o in world.offers(request_id)] == [1, 1, 2]

    world.clock.advance(600)
    world.dispatch.tick()

    assert world.dispatch_state(request_id)["state"] == "exhausted"
    assert world.request(request_id)["status"] == "confirmed"
    assert world.sent(CUSTOMER) == [
        f"We have not yet found an available artisan for your request no. {request_id}. A Djobea adviser will call"
        " you very soon."
    ]
    staff = world.sent(STAFF)
    assert len(staff) == 2 and staff[0].startswith(f"[Djobea] Nouvelle demande n°{request_id} confirmée")
    assert staff[1].startswith(f"[Djobea] Aucun artisan n'a accepté la demande n°{request_id}") and CUSTOMER in staff[1]
    assert world.events(request_id).count("batch_timeout") == 2

    # Nothing more happens on later ticks; a late "yes" from the first batch still wins.
    world.clock.advance(3600)
    world.dispatch.tick()
    assert len(world.sent(CUSTOMER)) == 1 and len(world.sent(STAFF)) == 2
    assert world.answer("+237690000001", "yes").outcome == "accepted"
    assert world.request(request_id)["status"] == "assigned" and len(world.sent(CUSTOMER)) == 2


def test_a_batch_everyone_declines_is_followed_at_once(make_world) -> None:
    world: World = make_world(batch_size=1)
    world.artisan("Alain", "+237690000001")
    world.artisan("Bruno", "+237690000002")
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)

    reply = world.answer("+237690000001", "Non merci, je suis occupé")

    assert reply.outcome == "declined" and world.sent("+237690000001")[-1].startswith("C'est noté, merci.")
    assert world.offer_statuses(request_id) == {"Alain": "declined", "Bruno": "offered"}
    assert world.sent("+237690000002")[-1].startswith(f"Djobea : nouvelle demande n°{request_id}")
    assert world.answer("+237690000002", "I no fit today").outcome == "declined"
    assert world.dispatch_state(request_id)["state"] == "exhausted"


def test_an_offer_twilio_refuses_counts_as_no_answer_at_once(make_world) -> None:
    world: World = make_world(batch_size=1)
    world.artisan("Alain", "+237690000001")
    world.artisan("Bruno", "+237690000002")
    world.emulator.twilio.set_fault("invalid_number", times=1)
    request_id = world.confirmed_request()

    world.dispatch.start(request_id)
    assert world.sent("+237690000001") == []  # refused with 21211, recorded failed
    world.dispatch.tick()

    assert world.offer_statuses(request_id) == {"Alain": "undeliverable", "Bruno": "offered"}
    assert len(world.sent("+237690000002")) == 1
    assert "undeliverable" in world.events(request_id)


def test_a_location_matching_no_quartier_reaches_every_artisan_of_the_trade(make_world) -> None:
    world: World = make_world(batch_size=5)
    world.artisan("Alain", "+237690000001", quartiers=["Akwa"])
    world.artisan("Bruno", "+237690000002", quartiers=["Bonabéri"])
    world.artisan("Carine", "+237690000003", ["électricité"])
    unknown = world.confirmed_request(location="derrière la boulangerie du coin")
    nobody_there = world.confirmed_request(customer="+237699000002", location="Japoma, stade")

    world.dispatch.start(unknown)
    world.dispatch.start(nobody_there)

    assert world.offer_statuses(unknown) == {"Alain": "offered", "Bruno": "offered"}
    assert world.dispatch_state(unknown)["quartier"] is None
    assert "derrière la boulangerie du coin" in world.sent("+237690000001")[0]
    assert world.offer_statuses(nobody_there) == {"Alain": "offered", "Bruno": "offered"}
    assert world.dispatch_state(nobody_there)["quartier"] == "Japoma"


def test_paused_artisans_get_no_offer_and_keep_their_history(world: World) -> None:
    alain = world.artisan("Alain", "+237690000001")
    world.artisan("Bruno", "+237690000002")
    first = world.confirmed_request()
    world.dispatch.start(first)
    world.answer("+237690000001", "oui")

    world.dispatch.directory.pause(alain.id)
    second = world.confirmed_request(customer="+237699000002")
    world.dispatch.start(second)

    assert world.offer_statuses(second) == {"Bruno": "offered"}
    assert world.request(first)["artisan_id"] == alain.id
    assert world.dispatch.directory.get(alain.id).active is False


def test_no_artisan_of_the_trade_alerts_staff_at_once(make_world) -> None:
    world: World = make_world(staff_whatsapp=STAFF)
    world.artisan("Carine", "+237690000003", ["électricité"])
    request_id = world.confirmed_request(service_type="electromenager")

    assert world.dispatch.start(request_id) == "exhausted"

    assert world.offers(request_id) == []
    assert "no artisan of this trade available" in world.sent(STAFF)[1]
    assert len(world.sent(CUSTOMER)) == 1


def test_a_web_chat_request_is_left_to_staff(make_world) -> None:
    world: World = make_world(staff_whatsapp=STAFF)
    world.artisan("Alain", "+237690000001")
    request_id = world.confirmed_request(customer="chat:abc123")

    assert world.dispatch.start(request_id) == "manual"

    assert world.offers(request_id) == [] and world.sent("+237690000001") == []
    assert "sans numéro WhatsApp client" in world.sent(STAFF)[0]


def test_start_is_once_and_tick_starts_what_the_hook_missed(world: World) -> None:
    world.artisan("Alain", "+237690000001")
    draft = world.confirmed_request(status="awaiting_confirmation")
    request_id = world.confirmed_request(customer="+237699000002")

    assert world.dispatch.start(draft) is None  # not confirmed
    assert world.dispatch.tick().started == [request_id]
    assert world.dispatch.start(request_id) is None
    assert world.dispatch.tick().started == []
    assert len(world.sent("+237690000001")) == 1 and world.events(request_id).count("started") == 1


def test_an_artisan_with_nothing_open_gets_help(world: World) -> None:
    world.artisan("Alain", "+237690000001")

    assert world.answer("+237690000001", "OUI").outcome == "no_offer"
    assert world.sent("+237690000001")[-1].startswith("Vous n'avez aucune demande en attente")

    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    unclear = world.answer("+237690000001", "c'est où exactement ?")
    assert unclear.outcome == "unclear" and f"OUI pour prendre la demande n°{request_id}" in unclear.reply
    assert world.request(request_id)["status"] == "confirmed"


def test_the_same_artisan_message_processed_twice_replies_once(world: World) -> None:
    world.artisan("Alain", "+237690000001")
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    inbound_id, message = world.write_from("+237690000001", "OUI")

    first = world.dispatch.handle_artisan_message(inbound_id, message)
    second = world.dispatch.handle_artisan_message(inbound_id, message)  # e.g. taken again after a crash

    assert (first.outcome, second.outcome) == ("accepted", "repeat") and first.reply == second.reply
    assert world.sent("+237690000001").count(first.reply) == 1 and len(world.sent(CUSTOMER)) == 1


def test_the_offer_text_is_the_template_text() -> None:
    assert OFFER_TEMPLATE.count("{{") == 5  # variables 1-5 in the body; 6 is the buttons' offer id


def test_an_answer_whose_lease_was_lost_changes_nothing(world: World) -> None:
    world.artisan("Alain", "+237690000001")
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    queue = InboundQueue(world.store, world.clock)
    world.write_from("+237690000001", "OUI")
    stale = queue.claim("worker-a", lease_s=15, customer_id="+237690000001")
    world.clock.advance(16)  # worker-a stalled past its lease; worker-b took the message over
    assert queue.claim("worker-b", lease_s=15, customer_id="+237690000001") is not None

    with pytest.raises(LeaseLost):
        world.dispatch.handle_artisan_message(stale.id, stale.message, lambda db: queue.check_lease(db, stale))

    assert world.request(request_id)["status"] == "confirmed" and "accepted" not in world.events(request_id)
    assert world.dispatch.outbox.for_inbound(stale.id) == [] and world.sent(CUSTOMER) == []


def test_without_twilio_credentials_dispatch_messages_are_kept_as_sandbox_rows(make_world) -> None:
    world: World = make_world(gateway=None, offer_content_sid="HX" + "b" * 32)
    world.artisan("Alain", "+237690000001")
    world.artisan("Bruno", "+237690000002", window=False)  # would get the template
    request_id = world.confirmed_request()

    world.dispatch.start(request_id)
    world.answer("+237690000001", "OUI")

    rows = list(world.store.db.query("select to_number, kind, status from outbound_messages order by id"))
    assert {row["status"] for row in rows} == {"sandbox"} and world.emulator.twilio.request_count() == 0
    assert [(r["to_number"], r["kind"]) for r in rows] == [
        ("+237690000001", "dispatch_offer"),
        ("+237690000002", "dispatch_offer"),
        ("+237699000001", "dispatch_customer"),
        ("+237690000001", "dispatch_reply"),
    ]
