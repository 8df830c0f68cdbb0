"""Staff move requests through assigned, in_progress, done, cancelled; what the status does not allow is an
``IllegalTransition`` (a 409) that says why; each change is an event with who did it, and the people concerned
are told."""

from __future__ import annotations

import pytest

from bot.dispatch import IllegalTransition, InvalidInput, NotFound
from tests.dispatch.conftest import CUSTOMER, World

ALAIN, BRUNO, CARINE = "+237690000001", "+237690000002", "+237690000003"


@pytest.mark.parametrize(
    ("start", "target", "reason"),
    [
        ("collecting", "assigned", "the customer has not confirmed it yet; it can only be cancelled"),
        ("awaiting_confirmation", "in_progress", "the customer has not confirmed it yet"),
        ("confirmed", "in_progress", "nobody is assigned yet: assign an artisan first"),
        ("confirmed", "done", "nobody is assigned yet"),
        ("done", "cancelled", "a done request is closed; the customer can open a new one"),
        ("cancelled", "assigned", "a cancelled request is closed"),
        ("in_progress", "assigned", "work has started: it can only be finished or cancelled"),
    ],
)
def test_illegal_transitions_are_refused_with_the_reason(world: World, start: str, target: str, reason: str) -> None:
    alain = world.artisan("Alain", ALAIN)
    request_id = world.confirmed_request(status=start)

    with pytest.raises(IllegalTransition) as refused:
        world.dispatch.change_status(request_id, target, "admin:marie", artisan_id=alain.id)

    assert reason in str(refused.value) and str(refused.value).startswith(f"request {request_id} is {start}: ")
    assert (refused.value.current, refused.value.target) == (start, target)
    assert world.request(request_id)["status"] == start
    assert "status" not in world.events(request_id)


def test_bad_input_and_unknown_ids(world: World) -> None:
    request_id = world.confirmed_request()
    with pytest.raises(InvalidInput, match="status: must be one of assigned, in_progress, done, cancelled"):
        world.dispatch.change_status(request_id, "confirmed", "admin:marie")
    with pytest.raises(InvalidInput, match="artisan_id: required"):
        world.dispatch.change_status(request_id, "assigned", "admin:marie")
    with pytest.raises(NotFound, match="no artisan 99"):
        world.dispatch.change_status(request_id, "assigned", "admin:marie", artisan_id=99)
    with pytest.raises(NotFound, match="no request 42"):
        world.dispatch.change_status(42, "done", "admin:marie")


def test_the_whole_life_of_a_request_with_a_staff_assignment(world: World) -> None:
    world.artisan("Alain", ALAIN)
    bruno = world.artisan("Bruno", BRUNO)
    carine = world.artisan("Carine", CARINE, quartiers=["Deïdo"])
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)

    # Staff give it to Carine (not offered); the open offers are closed, everyone told.
    world.dispatch.change_status(
        request_id, "assigned", "admin:marie", note="elle connaît le client", artisan_id=carine.id
    )
    assert world.request(request_id)["artisan_id"] == carine.id
    assert world.offer_statuses(request_id) == {"Alain": "taken", "Bruno": "taken"}
    assert world.sent(CARINE)[-1].startswith(f"L'équipe Djobea vous confie la demande n°{request_id}")
    assert CUSTOMER in world.sent(CARINE)[-1]
    assert "Carine (+237690000003)" in world.sent(CUSTOMER)[-1]

    # Reassigned to Bruno: Carine is told not to go.
    world.dispatch.change_status(request_id, "assigned", "admin:marie", artisan_id=bruno.id)
    assert "confiée à un autre artisan" in world.sent(CARINE)[-1]
    with pytest.raises(IllegalTransition, match="already assigned to artisan"):
        world.dispatch.change_status(request_id, "assigned", "admin:marie", artisan_id=bruno.id)

    world.dispatch.change_status(request_id, "in_progress", "admin:paul")
    done = world.dispatch.change_status(request_id, "done", "admin:paul", note="payé")

    assert done["status"] == "done" and world.dispatch_state(request_id)["state"] == "closed"
    events = list(
        world.store.db.query(
            "select from_status, to_status, actor, note from dispatch_events where kind = 'status' order by id"
        )
    )
    assert events == [
        {"from_status": "confirmed", "to_status": "assigned", "actor": "admin:marie", "note": "elle connaît le client"},
        {"from_status": "assigned", "to_status": "assigned", "actor": "admin:marie", "note": None},
        {"from_status": "assigned", "to_status": "in_progress", "actor": "admin:paul", "note": None},
        {"from_status": "in_progress", "to_status": "done", "actor": "admin:paul", "note": "payé"},
    ]


def test_cancelling_tells_the_offered_artisans_and_the_customer(world: World) -> None:
    world.artisan("Alain", ALAIN)
    world.artisan("Bruno", BRUNO)
    request_id = world.confirmed_request(language="en")
    world.dispatch.start(request_id)
    world.answer(ALAIN, "non")

    world.dispatch.change_status(request_id, "cancelled", "admin:marie", note="doublon")

    assert world.offer_statuses(request_id) == {"Alain": "declined", "Bruno": "withdrawn"}
    assert (
        world.sent(BRUNO)[-1]
        == f"La demande n°{request_id} (plomberie, Akwa) a été annulée : ne vous déplacez pas. Merci !"
    )
    assert not world.sent(ALAIN)[-1].startswith("La demande")  # who said no is not bothered again
    assert world.sent(CUSTOMER) == [
        f"Your request no. {request_id} has been cancelled. Write to us if you still need help."
    ]
    assert world.dispatch_state(request_id)["state"] == "cancelled"
    assert world.answer(BRUNO, "OUI").outcome == "no_longer_open"
    world.clock.advance(3600)
    world.dispatch.tick()  # a cancelled dispatch never times out into a new batch
    assert world.events(request_id).count("batch_timeout") == 0


def test_cancelling_an_assigned_request_tells_its_artisan(world: World) -> None:
    world.artisan("Alain", ALAIN)
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    world.answer(ALAIN, "oui")

    world.dispatch.change_status(request_id, "cancelled", "admin:marie")

    assert "a été annulée : ne vous déplacez pas" in world.sent(ALAIN)[-1]
