"""Exactly once under concurrency: two artisans accepting in the same instant (threads of one process, and
two processes) give the request to one of them; two processes starting the same dispatch offer and announce it
once. Real SQLite shared, BEGIN IMMEDIATE, the emulated Twilio counting what it received."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bot.dispatch.dispatcher import ArtisanReply
from tests.dispatch.conftest import CUSTOMER, STAFF, World

ROOT = Path(__file__).resolve().parents[2]


def test_two_artisans_accepting_at_once_on_two_threads_one_wins(world: World) -> None:
    world.artisan("Alain", "+237690000001")
    world.artisan("Bruno", "+237690000002")
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    answers = [world.write_from(number, "OUI") for number in ("+237690000001", "+237690000002")]
    barrier = threading.Barrier(2)
    replies: list[ArtisanReply] = []

    def accept(inbound_id: int, message) -> None:
        barrier.wait()
        replies.append(world.dispatch.handle_artisan_message(inbound_id, message))

    threads = [threading.Thread(target=accept, args=answer) for answer in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(reply.outcome for reply in replies) == ["accepted", "too_late"]
    assert_assigned_once(world, request_id)


def test_two_artisans_accepting_at_once_in_two_processes_one_wins(world: World, tmp_path: Path) -> None:
    world.artisan("Alain", "+237690000001")
    world.artisan("Bruno", "+237690000002")
    world.artisan("Carine", "+237690000003")
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    inbound_ids = [world.write_from(number, "OUI")[0] for number in ("+237690000001", "+237690000002")]

    results = run_together(world, tmp_path, [("answer", inbound_id) for inbound_id in inbound_ids])

    assert sorted(result["outcome"] for result in results) == ["accepted", "too_late"]
    assert all(result["settled"] for result in results)
    assert_assigned_once(world, request_id)
    assert world.sent("+237690000003")[-1].startswith(f"La demande n°{request_id} (plomberie, Akwa) a déjà été prise")


def test_two_processes_starting_one_dispatch_offer_and_announce_it_once(make_world, tmp_path: Path) -> None:
    world: World = make_world(staff_whatsapp=STAFF)
    for index in range(1, 5):
        world.artisan(f"Artisan {index}", f"+23769000000{index}")
    request_id = world.confirmed_request()

    results = run_together(world, tmp_path, [("start", request_id)] * 3)

    assert sorted(json.dumps(result["state"]) for result in results) == ['"offering"', "null", "null"]
    assert len(world.offers(request_id)) == 3  # DISPATCH_BATCH, once
    offers_received = Counter(
        m["to"] for m in world.emulator.twilio.messages() if m["body"].startswith("Djobea : nouvelle demande")
    )
    assert sorted(offers_received.values()) == [1, 1, 1]
    assert len(world.sent(STAFF)) == 1
    assert world.store.db.execute("select count(*) from staff_announcements").fetchone()[0] == 1


def assert_assigned_once(world: World, request_id: int) -> None:
    statuses = Counter(world.offer_statuses(request_id).values())
    assert statuses["accepted"] == 1
    request = world.request(request_id)
    winner = next(o["artisan_id"] for o in world.offers(request_id) if o["status"] == "accepted")
    assert request["status"] == "assigned" and request["artisan_id"] == winner
    assert world.events(request_id).count("accepted") == 1
    assert len(world.sent(CUSTOMER)) == 1  # the customer hears of one artisan, once


def run_together(world: World, tmp_path: Path, actions: list[tuple[str, int]]) -> list[dict]:
    """Start one process per action, let them all act at the same instant, return what each printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.dispatch.dispatch_process",
                str(tmp_path / "bot.db"),
                world.emulator.base_url,
                action,
                str(argument),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for action, argument in actions
    ]
    for process in processes:  # every process is built and waiting
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results
