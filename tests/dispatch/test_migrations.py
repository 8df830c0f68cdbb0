"""The dispatch migrations on a database that already has history: requests confirmed before dispatch existed
are recorded as not dispatched, so shipping the feature offers nobody last month's leak."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from bot.store import Store
from bot.store.migrations import MIGRATIONS
from tests.dispatch.conftest import World


def test_requests_confirmed_before_dispatch_are_history_not_news(make_world, tmp_path: Path) -> None:
    old = sqlite_utils.Database(tmp_path / "bot.db")
    MIGRATIONS.apply(old, stop_before="m301_artisans")
    old["conversations"].insert({"id": 1, "customer_id": "+237699000001", "channel": "whatsapp"})
    for request_id, status in ((1, "confirmed"), (2, "collecting"), (3, "cancelled")):
        old["service_requests"].insert(
            {"id": request_id, "conversation_id": 1, "customer_id": "+237699000001", "status": status,
             "service_type": "plomberie", "location": "Akwa", "created_at": 0.0}
        )  # fmt: skip
    old.close()

    world: World = make_world()  # opening the store applies m301 and after
    world.artisan("Alain", "+237690000001")

    assert list(world.store.db.execute("select request_id, state from request_dispatch")) == [(1, "not_dispatched")]
    assert world.dispatch.tick().started == []
    assert world.sent("+237690000001") == []
    assert MIGRATIONS.pending(Store(tmp_path / "bot.db").db) == []
