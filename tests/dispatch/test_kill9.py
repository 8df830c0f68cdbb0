"""A dispatch process killed with SIGKILL in the middle of sending loses nothing and sends nothing twice: the
decision and its messages were one transaction, the message Twilio took while its answer was lost is found at
Twilio, and what was never sent goes once. Real subprocesses, SQLite shared, the session's emulated Twilio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.dispatch.conftest import CUSTOMER, GRACE_S, STAFF, World
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTISANS = ("+237690000001", "+237690000002", "+237690000003")


def killed_while_sending(world: World, tmp_path: Path, action: str, argument: int) -> None:
    """Run one dispatch action in a process that is SIGKILLed as soon as Twilio holds its first message."""
    world.emulator.twilio.set_clock(None)  # Twilio dates messages by real time, as the killed process does
    world.emulator.twilio.set_latency(30)  # the message is recorded, its answer never comes back
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.dispatch.dispatch_process", str(tmp_path / "bot.db"), world.emulator.base_url,
         action, str(argument)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout.readline().strip() == "ready", process.stderr.read()
    before = world.emulator.twilio.request_count()
    process.stdin.write("go\n")
    process.stdin.flush()
    wait_until(lambda: world.emulator.twilio.request_count() > before, timeout=30, what="a send reaching Twilio")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    world.emulator.twilio.set_latency(0)


def restarted(make_world) -> World:
    """Another process on the same database, once the killed one's in-flight window is over."""
    world: World = make_world()
    world.clock.now = time.time()
    world.clock.advance(GRACE_S + 1)
    return world


def test_killed_while_sending_offers_each_artisan_gets_one(make_world, tmp_path: Path) -> None:
    world: World = make_world()
    for index, number in enumerate(ARTISANS):
        world.artisan(f"Artisan {index}", number)
    request_id = world.confirmed_request()

    killed_while_sending(world, tmp_path, "start", request_id)
    statuses = Counter(row[0] for row in world.store.db.execute("select status from outbound_messages"))
    assert statuses == {"in_flight": 1, "pending": 3}  # the decision is whole (3 offers, staff); one send cut off

    after = restarted(make_world)
    after.dispatch.tick()

    offers = Counter(m["to"] for m in world.emulator.twilio.messages() if "nouvelle demande" in m["body"])
    assert offers == Counter(f"whatsapp:{number}" for number in ARTISANS)
    assert [o["status"] for o in after.offers(request_id)] == ["offered"] * 3
    assert {row[0] for row in after.store.db.execute("select status from outbound_messages")} == {"queued"}
    assert len(after.sent(STAFF)) == 1  # the announcement of the new request, once


def test_killed_while_telling_an_acceptance_the_request_is_assigned_once(make_world, tmp_path: Path) -> None:
    world: World = make_world()
    for index, number in enumerate(ARTISANS[:2]):
        world.artisan(f"Artisan {index}", number)
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    inbound_id, message = world.write_from(ARTISANS[0], "OUI")

    killed_while_sending(world, tmp_path, "answer", inbound_id)
    assert world.request(request_id)["status"] == "assigned"

    after = restarted(make_world)
    reply = after.dispatch.handle_artisan_message(inbound_id, message)  # the worker takes the message again
    after.dispatch.tick()

    assert reply.outcome == "repeat" and reply.delivery.settled
    assert sum(body.startswith("C'est pour vous") for body in after.sent(ARTISANS[0])) == 1
    assert len(after.sent(CUSTOMER)) == 1 and "Artisan 0" in after.sent(CUSTOMER)[0]
    assert sum("déjà été prise" in body for body in after.sent(ARTISANS[1])) == 1
    assert after.events(request_id).count("accepted") == 1
