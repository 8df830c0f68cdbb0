"""The customer afterwards: "Où en est ma demande ?" gets the real status in their language, "annulez" cancels
(offered artisans told), anything else is left to the conversation engine (a new problem opens a new request).
The reply is recorded as the message's reply, with the turn in the conversation, as the worker records its own."""

from __future__ import annotations

import pytest

from bot.conversation.history import ConversationHistory
from tests.dispatch.conftest import CUSTOMER, World

ALAIN = "+237690000001"


def ask(world: World, text: str, customer: str = CUSTOMER):
    inbound_id, message = world.write_from(customer, text)
    return inbound_id, world.dispatch.reply_to_customer(inbound_id, message)


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("Où en est ma demande ?", "fr", "est confirmée : nous la proposons aux artisans disponibles"),
        ("Wetin happen to my request?", "pcm", "don confirm: we dey show am to artisans"),
        ("Any update on my request please?", "en", "is confirmed: we are offering it to available artisans"),
    ],
)
def test_status_question_gets_the_real_status_in_the_customers_language(
    world: World, question: str, language: str, expected: str
) -> None:
    world.artisan("Alain", ALAIN)
    request_id = world.confirmed_request(language=language)
    world.dispatch.start(request_id)

    inbound_id, reply = ask(world, question)

    assert reply is not None and reply.intent == "status" and reply.request_id == request_id
    assert expected in reply.reply and f"{request_id}" in reply.reply
    [row] = world.dispatch.outbox.for_inbound(inbound_id, kind="reply")
    assert row.body == reply.reply and row.idempotency_key == f"{inbound_id}:reply"
    conversation = ConversationHistory(world.store).find(CUSTOMER)
    assert [m.content for m in ConversationHistory(world.store).recent(conversation.id)][-2:] == [question, reply.reply]


def test_status_follows_the_request(world: World) -> None:
    world.artisan("Alain", ALAIN)
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)
    world.answer(ALAIN, "OUI")
    assert "Alain (+237690000001) s'occupe de votre demande" in ask(world, "où en est ma demande")[1].reply

    world.dispatch.change_status(request_id, "in_progress", "admin:marie")
    assert "est en train de traiter" in ask(world, "Des nouvelles ?")[1].reply
    world.dispatch.change_status(request_id, "done", "admin:marie")
    assert "est terminée" in ask(world, "statut ?")[1].reply


def test_exhausted_request_status_says_a_person_will_call(make_world) -> None:
    world: World = make_world()
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)  # nobody in the directory
    assert "Un conseiller Djobea va vous appeler" in ask(world, "Où en est ma demande ?")[1].reply


def test_the_customer_cancels_and_offered_artisans_are_told(world: World) -> None:
    world.artisan("Alain", ALAIN)
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)

    inbound_id, reply = ask(world, "Finalement annulez ma demande, le voisin a réparé")

    assert reply.intent == "cancel" and reply.reply.startswith(f"C'est noté : votre demande n°{request_id} est annulée")
    assert world.request(request_id)["status"] == "cancelled"
    assert "a été annulée : ne vous déplacez pas" in world.sent(ALAIN)[-1]
    event = world.store.db.execute("select actor, note from dispatch_events where kind = 'status'").fetchone()
    assert event == ("customer", "Finalement annulez ma demande, le voisin a réparé")
    assert world.sent(CUSTOMER) == []  # the reply is the caller's to deliver, like any reply
    world.dispatch.sender.deliver(world.dispatch.outbox.for_inbound(inbound_id, kind="reply"), lambda db: None)
    assert world.sent(CUSTOMER) == [reply.reply]

    again = world.dispatch.reply_to_customer(inbound_id, world.write_from(CUSTOMER, "annulez")[1])  # same message
    assert again.reply == reply.reply  # taken again after a crash: the recorded reply, nothing cancelled twice


def test_messages_dispatch_does_not_answer_are_left_to_the_engine(world: World) -> None:
    request_id = world.confirmed_request()
    world.dispatch.start(request_id)

    assert ask(world, "J'ai aussi une prise qui ne marche plus")[1] is None  # a new problem: the engine's
    assert ask(world, "Où en est ma demande ?", customer="+237699000099")[1] is None  # no request at all
    assert ask(world, "Surtout ne l'annulez pas !")[1] is None
    draft = world.confirmed_request(status="collecting", service_type="electricite")
    assert ask(world, "annulez")[1] is None  # about the request being described: the engine's to cancel
    assert world.request(request_id)["status"] == "confirmed"
    world.store.db.execute("delete from service_requests where id = ?", [draft])
    world.store.db.conn.commit()
    world.dispatch.change_status(request_id, "cancelled", "admin:marie")
    assert ask(world, "annuler")[1] is None  # nothing active left to cancel
    assert "a été annulée" in ask(world, "où en est ma demande ?")[1].reply
