"""What staff read: requests newest first, filtered and paginated, each with its artisan; one request whole
(conversation, offers, every dispatch event, messages); the same list as CSV."""

from __future__ import annotations

import csv
import io

import pytest

from bot.conversation.history import ConversationHistory
from bot.dispatch import InvalidInput, NotFound
from tests.dispatch.conftest import CUSTOMER, World

ALAIN = "+237690000001"


def test_pages_newest_first_with_filters_and_the_artisan(world: World) -> None:
    alain = world.artisan("Alain", ALAIN, ["plomberie", "électricité"])
    ids = []
    for index in range(5):
        ids.append(
            world.confirmed_request(
                customer=f"+23769900000{index}",
                service_type="electricite" if index == 3 else "plomberie",
                location="Deido" if index % 2 else "Akwa",
            )
        )
        world.clock.advance(10)
    for request_id in ids:
        world.dispatch.start(request_id)
    world.answer(ALAIN, f"oui {ids[1]}")
    book = world.dispatch.requests

    first, cursor = book.page(book.filter(), limit=2)
    second, cursor2 = book.page(book.filter(), cursor=cursor, limit=2)
    third, end = book.page(book.filter(), cursor=cursor2, limit=2)

    assert [r["id"] for r in first + second + third] == ids[::-1] and end is None
    assigned = next(r for r in first + second + third if r["id"] == ids[1])
    assert assigned["artisan"] == {"id": alain.id, "name": "Alain", "whatsapp": ALAIN, "active": True}
    assert assigned["status"] == "assigned" and assigned["quartier"] == "Deïdo"
    assert all(r["artisan"] is None for r in first + second + third if r["id"] != ids[1])

    def ids_for(**filters) -> list[int]:
        return [r["id"] for r in book.page(book.filter(**filters))[0]]

    assert ids_for(status="assigned") == [ids[1]]
    assert ids_for(status="confirmed,assigned") == ids[::-1]
    assert ids_for(service_type="électricité") == [ids[3]]
    assert ids_for(quartier="rond-point deido") == [ids[3], ids[1]]
    created = world.request(ids[2])["created_at"]
    assert ids_for(since=created, until=created + 15) == [ids[3], ids[2]]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"status": "open"}, "status"),
        ({"service_type": "menuiserie"}, "service_type"),
        ({"quartier": "Bastos"}, "quartier"),
        ({"since": "hier"}, "since"),
        ({"since": "nan"}, "since"),
        ({"since": "2025-01-02", "until": "2025-01-01"}, "until"),
    ],
)
def test_bad_filters_are_named(world: World, filters: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        world.dispatch.requests.filter(**filters)
    assert refused.value.field == field


def test_bad_paging_is_named(world: World) -> None:
    book = world.dispatch.requests
    with pytest.raises(InvalidInput, match="cursor"):
        book.page(book.filter(), cursor="abc")
    with pytest.raises(InvalidInput, match="limit"):
        book.page(book.filter(), limit=0)
    assert book.filter(since="2025-01-01T00:00:00Z").since == 1735689600.0


def test_one_request_whole(world: World) -> None:
    world.artisan("Alain", ALAIN)
    history = ConversationHistory(world.store, world.clock)
    request_id = world.confirmed_request(language="en")
    conversation = history.find(CUSTOMER)
    with world.store.immediate() as db:
        history.append(db, conversation.id, "user", "My tap is leaking in Akwa")
        history.append(db, conversation.id, "assistant", "Shall I send a plumber?")
    world.dispatch.start(request_id)
    world.answer(ALAIN, "yes")

    detail = world.dispatch.requests.get(request_id)

    assert detail["customer"] == CUSTOMER and detail["language"] == "en" and detail["status"] == "assigned"
    assert [m["content"] for m in detail["conversation"]] == ["My tap is leaking in Akwa", "Shall I send a plumber?"]
    assert [e["kind"] for e in detail["events"]] == ["started", "offered", "accepted", "status", "customer_notified"]
    assert detail["dispatch"]["state"] == "assigned" and detail["dispatch"]["quartier"] == "Akwa"
    assert [(o["artisan_name"], o["status"], o["template"]) for o in detail["offers"]] == [("Alain", "accepted", False)]
    assert [m["kind"] for m in detail["messages"]] == ["dispatch_offer", "dispatch_customer", "dispatch_reply"]
    assert [a["kind"] for a in detail["announcements"]] == ["new_request"]
    with pytest.raises(NotFound):
        world.dispatch.requests.get(999)


def test_csv_of_the_list(world: World) -> None:
    world.artisan("Alain", ALAIN)
    request_id = world.confirmed_request(description='fuite, "urgente"\nsous l\'évier')
    world.dispatch.start(request_id)
    world.answer(ALAIN, "oui")
    world.confirmed_request(customer="+237699000002", service_type="electricite", status="collecting")
    book = world.dispatch.requests

    rows = list(csv.DictReader(io.StringIO(book.csv(book.filter(status="assigned")))))

    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == str(request_id) and row["artisan_name"] == "Alain" and row["customer"] == CUSTOMER
    assert row["description"] == 'fuite, "urgente"\nsous l\'évier' and row["created_at"].endswith("+00:00")
    assert len(list(csv.DictReader(io.StringIO(book.csv(book.filter()))))) == 2
