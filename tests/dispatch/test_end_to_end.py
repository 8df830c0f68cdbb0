"""Dispatch end to end, as deployed: customers and artisans write through the Twilio-signed webhook, the queue
and the worker; the scripted model holds the conversation until the request is confirmed; dispatch offers it
to artisans through the one WhatsApp sender and the emulated Twilio; staff read and act through the staff API.
Time is a fake clock: a batch times out when the test moves the clock and the dispatch tick runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.dispatch.texts import OFFER_TEMPLATE
from tests.dispatch.conftest import ADMIN, OFFER_SID, STAFF, Site
from tests.support import twilio_env, wait_until

ROOT = Path(__file__).resolve().parents[2]

ALAIN, BRUNO, CARINE, DAVID = "+237690000001", "+237690000002", "+237690000003", "+237690000004"
CUSTOMER = "+237699000001"

CONVERSATIONS = {
    "fr": (
        [
            "Bonjour, j'ai une fuite d'eau sous l'évier",
            "Je suis à Bonamoussadi, près de la pharmacie",
            "C'est urgent, aujourd'hui si possible",
            "Oui",
        ],
        "plomberie",
        "Bonne nouvelle : Alain",
    ),
    "en": (
        ["Hello, my fridge stopped working", "I am in Akwa near the cathedral", "Tomorrow morning please", "Yes"],
        "electromenager",
        "Good news: Alain",
    ),
    "pcm": (
        ["Abeg, light don go for my house", "I dey for Makepe", "e urgent o", "Yes o"],
        "electricite",
        "Good news: Alain",
    ),
}


def artisans_write_first(site: Site, *numbers: str) -> None:
    """Artisans who wrote to us today: free text reaches them (their 24-hour window is open)."""
    for number in numbers:
        site.say(number, "Bonjour")


def confirm_request(site: Site, language: str = "fr", customer: str = CUSTOMER) -> dict:
    for text in CONVERSATIONS[language][0]:
        site.say(customer, text)
    [request] = site.requests(status="confirmed,assigned")
    return request


def offers_to(site: Site, number: str) -> list[str]:
    return [body for body in site.sent(number) if "nouvelle demande" in body]


@pytest.mark.parametrize("language", ["fr", "en", "pcm"])
def test_a_request_goes_from_first_message_to_an_assigned_artisan_and_both_are_told(site: Site, language: str) -> None:
    _, trade, good_news = CONVERSATIONS[language]
    site.add_artisan("Alain", ALAIN, trades=[trade])
    site.add_artisan("Bruno", BRUNO, trades=[trade])
    site.add_artisan("Zoé", DAVID, trades=["plomberie" if trade != "plomberie" else "electricite"])
    artisans_write_first(site, ALAIN, BRUNO, DAVID)

    request = confirm_request(site, language)

    assert request["service_type"] == trade and request["language"] == language
    assert request["dispatch_state"] == "offering" and request["artisan"] is None
    assert len(offers_to(site, ALAIN)) == 1 and len(offers_to(site, BRUNO)) == 1
    assert offers_to(site, DAVID) == []  # another trade
    assert any(f"n°{request['id']}" in body for body in site.sent(STAFF))  # staff told of the new request

    site.say(ALAIN, "OUI")

    [assigned] = site.requests(status="assigned")
    assert assigned["id"] == request["id"] and assigned["artisan"]["name"] == "Alain"
    assert site.sent(ALAIN)[-1].startswith("C'est pour vous !") and CUSTOMER in site.sent(ALAIN)[-1]
    assert site.sent(CUSTOMER)[-1].startswith(good_news) and ALAIN in site.sent(CUSTOMER)[-1]
    assert "déjà été prise" in site.sent(BRUNO)[-1]
    # The artisans' messages never reached the customer conversation or the model.
    conversation = site.request(request["id"])["conversation"]
    assert [m["role"] for m in conversation] == ["user", "assistant"] * 4

    site.say(CUSTOMER, "Où en est ma demande ?" if language == "fr" else "Where is my request?")
    assert "Alain" in site.sent(CUSTOMER)[-1] and ALAIN in site.sent(CUSTOMER)[-1]


def test_two_artisans_accepting_at_once_on_two_workers_make_exactly_one_assignment(site: Site) -> None:
    site.add_artisan("Alain", ALAIN)
    site.add_artisan("Bruno", BRUNO)
    artisans_write_first(site, ALAIN, BRUNO)
    request = confirm_request(site)
    # Both answers are queued before any worker runs; two worker threads then take one each at the same time.
    assert site.harness.whatsapp("OUI", customer=ALAIN).status_code == 200
    assert site.harness.whatsapp("Oui je prends", customer=BRUNO).status_code == 200
    barrier = threading.Barrier(2)
    worker = site.harness.runtime.worker

    def work() -> None:
        barrier.wait()
        worker.drain(timeout_s=30)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    [assigned] = site.requests(status="assigned")
    winner = assigned["artisan"]["whatsapp"]
    loser = BRUNO if winner == ALAIN else ALAIN
    assert assigned["id"] == request["id"]
    assert site.sent(winner)[-1].startswith("C'est pour vous !")
    assert "déjà été prise" in site.sent(loser)[-1]
    assert sum(1 for body in site.sent(CUSTOMER) if body.startswith("Bonne nouvelle")) == 1
    offers = site.request(request["id"])["offers"]
    assert sorted(o["status"] for o in offers) == ["accepted", "taken"]


def test_a_batch_that_times_out_goes_to_the_next_then_to_staff(make_site) -> None:
    site = make_site(DISPATCH_BATCH="1", DISPATCH_TIMEOUT_MIN="10")
    for name, number in (("Alain", ALAIN), ("Bruno", BRUNO)):
        site.add_artisan(name, number)
    artisans_write_first(site, ALAIN, BRUNO)
    request = confirm_request(site)
    assert len(offers_to(site, ALAIN)) == 1 and offers_to(site, BRUNO) == []

    site.clock.advance(9 * 60)
    assert site.tick().advanced == []  # not yet
    site.clock.advance(60 + 1)
    assert site.tick().advanced == [request["id"]]
    assert len(offers_to(site, BRUNO)) == 1

    site.clock.advance(10 * 60 + 1)
    site.tick()

    detail = site.request(request["id"])
    assert detail["status"] == "confirmed" and detail["dispatch"]["state"] == "exhausted"
    assert any("Aucun artisan n'a accepté" in body for body in site.sent(STAFF))
    assert site.sent(CUSTOMER)[-1].startswith("Nous n'avons pas encore trouvé d'artisan")
    # A late "OUI" of the first batch still wins while nobody has the request.
    site.say(ALAIN, "OUI")
    assert site.requests(status="assigned")[0]["artisan"]["name"] == "Alain"


def test_the_customer_cancels_and_the_offered_artisans_are_told(site: Site) -> None:
    site.add_artisan("Alain", ALAIN)
    site.add_artisan("Bruno", BRUNO)
    artisans_write_first(site, ALAIN, BRUNO)
    request = confirm_request(site)

    site.say(CUSTOMER, "Annulez ma demande s'il vous plaît")

    assert site.sent(CUSTOMER)[-1].startswith(f"C'est noté : votre demande n°{request['id']} est annulée")
    assert site.request(request["id"])["status"] == "cancelled"
    assert "a été annulée" in site.sent(ALAIN)[-1] and "a été annulée" in site.sent(BRUNO)[-1]
    site.say(ALAIN, "OUI")
    assert "n'est plus ouverte" in site.sent(ALAIN)[-1]
    assert site.requests(status="assigned") == []


def test_staff_assign_by_hand_and_an_illegal_change_is_a_409_with_the_reason(site: Site) -> None:
    alain = site.add_artisan("Alain", ALAIN)
    artisans_write_first(site, ALAIN)
    request = confirm_request(site)

    done = site.harness.client.post(f"/api/requests/{request['id']}/status", json={"status": "done"}, headers=ADMIN)
    assert done.status_code == 409 and "assign an artisan first" in done.json["detail"]
    assigned = site.harness.client.post(
        f"/api/requests/{request['id']}/status", json={"status": "assigned", "artisan_id": alain, "by": "marie"},
        headers=ADMIN,
    )  # fmt: skip
    assert assigned.status_code == 200 and assigned.json["request"]["artisan"]["name"] == "Alain"
    assert site.sent(ALAIN)[-1].startswith("L'équipe Djobea vous confie")
    assert site.sent(CUSTOMER)[-1].startswith("Bonne nouvelle : Alain")


def test_outside_the_window_the_offer_is_the_template_inside_it_free_text(make_site, emulator) -> None:
    site = make_site(TWILIO_OFFER_CONTENT_SID=OFFER_SID)
    emulator.twilio.set_content_template(OFFER_SID, OFFER_TEMPLATE)
    site.add_artisan("Alain", ALAIN)
    site.add_artisan("Bruno", BRUNO)  # never wrote to us: his window is closed
    artisans_write_first(site, ALAIN)

    request = confirm_request(site)

    [to_alain] = [m for m in emulator.twilio.messages(f"whatsapp:{ALAIN}") if "nouvelle demande" in m["body"]]
    [to_bruno] = emulator.twilio.messages(f"whatsapp:{BRUNO}")
    assert "content_sid" not in to_alain
    assert to_bruno["content_sid"] == OFFER_SID
    variables = json.loads(to_bruno["content_variables"])
    assert variables["1"] == str(request["id"]) and variables["2"] == "plomberie"
    assert to_bruno["body"] == to_alain["body"]  # the same words, rendered by WhatsApp from the template
    offers = {o["artisan_name"]: o["template"] for o in site.request(request["id"])["offers"]}
    assert offers == {"Alain": False, "Bruno": True}

    site.say(BRUNO, "OUI")  # his answer opens his window: the reply is free text
    assert site.requests(status="assigned")[0]["artisan"]["name"] == "Bruno"
    assert "content_sid" not in emulator.twilio.messages(f"whatsapp:{BRUNO}")[-1]


def test_without_a_template_an_artisan_outside_the_window_is_skipped_with_the_reason(site: Site) -> None:
    site.add_artisan("Alain", ALAIN)
    site.add_artisan("Bruno", BRUNO)
    artisans_write_first(site, ALAIN)

    request = confirm_request(site)

    assert site.sent(BRUNO) == []
    offers = {o["artisan_name"]: o["status"] for o in site.request(request["id"])["offers"]}
    assert offers == {"Alain": "offered", "Bruno": "skipped"}
    notes = [e["note"] for e in site.request(request["id"])["events"] if e["kind"] == "offer_skipped"]
    assert notes and "TWILIO_OFFER_CONTENT_SID" in notes[0]


def test_a_web_chat_request_is_left_to_staff(site: Site) -> None:
    client = site.harness.client
    session = None
    for text in CONVERSATIONS["fr"][0]:
        body = {"message": text, **({"session": session} if session else {"user": "web"})}
        answer = client.post("/webhook/chat", json=body)
        assert answer.status_code == 200, answer.json
        session = session or answer.json["session"]

    [request] = site.requests(status="confirmed")
    assert request["dispatch_state"] == "manual"
    assert any("sans numéro WhatsApp client" in body for body in site.sent(STAFF))


def test_a_worker_process_killed_while_answering_an_acceptance_assigns_once_and_tells_each_once(
    make_site, emulator, provider_env: dict[str, str], tmp_path: Path
) -> None:
    site = make_site()
    site.clock.now = time.time()  # the worker process runs on real time: both sides read the same windows
    emulator.twilio.set_clock(None)
    site.add_artisan("Alain", ALAIN)
    site.add_artisan("Bruno", BRUNO)
    artisans_write_first(site, ALAIN, BRUNO)
    request = confirm_request(site)
    assert site.harness.whatsapp("OUI", customer=ALAIN).status_code == 200  # queued; no worker here takes it

    emulator.twilio.set_latency(30)  # Twilio records the first reply; its answer never comes back
    before = emulator.twilio.request_count()
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}, **provider_env,
        **twilio_env(emulator), "DATABASE_PATH": str(tmp_path / "bot.db"), "INBOUND_LEASE_S": "2",
        "TWILIO_TIMEOUT_S": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker", "--threads", "1"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: emulator.twilio.request_count() > before, timeout=60, what="the worker reaching Twilio")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    emulator.twilio.set_latency(0)
    assert site.request(request["id"])["status"] == "assigned"  # the decision and its messages: one transaction

    site.clock.now = time.time() + 60  # past the dead worker's lease and the in-flight grace of its send
    site.harness.drain()  # this process takes the message again: the reply Twilio holds is found, not resent
    site.tick()

    assert sum(body.startswith("C'est pour vous") for body in site.sent(ALAIN)) == 1
    assert sum(body.startswith("Bonne nouvelle : Alain") for body in site.sent(CUSTOMER)) == 1
    assert sum("déjà été prise" in body for body in site.sent(BRUNO)) == 1
    events = [e["kind"] for e in site.request(request["id"])["events"]]
    assert events.count("accepted") == 1
    statuses = site.services.store.db.execute("select distinct status from outbound_messages").fetchall()
    assert {row[0] for row in statuses} == {"queued"}
