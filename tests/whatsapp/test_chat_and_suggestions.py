"""POST /webhook/chat (synchronous, same engine, its users kept apart from WhatsApp customers) and
POST /api/ai-suggestions/generate. A conversation is named by the session token its first answer issued
(``Visitor`` keeps it, as a web page would); the attacks on that credential are in test_chat_security.py."""

from __future__ import annotations

import itertools
import json
import threading

import pytest

from bot.conversation.engine import Turn
from bot.conversation.fixed_replies import DEFAULT_SUGGESTIONS, HOLDING_REPLY, NOT_PROCESSED_REPLY
from bot.sandbox.scripted_model import djobea_model_reply
from tests.support import CUSTOMER, Harness

PROVIDERS = ("claude", "gemini", "openai")


def chat(harness: Harness, message: str, **body):
    return harness.client.post("/webhook/chat", json={"message": message, **body})


def suggest(harness: Harness, **body):
    return harness.client.post("/api/ai-suggestions/generate", json=body)


class Visitor:
    """A web-chat client: sends the session token its first answer issued with every later message (and its
    ``user`` label until it has one)."""

    labels = itertools.count(1)

    def __init__(self, harness: Harness, user: str | None = None) -> None:
        self.harness = harness
        self.user = user or f"visitor-{next(self.labels)}"
        self.session: str | None = None

    def say(self, message: str, client=None):
        body = {"session": self.session} if self.session else {"user": self.user}
        response = (client or self.harness.client).post("/webhook/chat", json={**body, "message": message})
        if response.status_code == 200 and self.session is None:
            self.session = response.json.get("session")
        return response

    def suggest(self, **body):
        return suggest(self.harness, session=self.session, **body)


def customer_of(harness: Harness, conversation_id: int) -> str:
    """The conversation key behind a conversation id (what the engine and the request rows use)."""
    return harness.runtime.store.db.execute(
        "select customer_id from conversations where id = ?", [conversation_id]
    ).fetchone()[0]


# --- chat -------------------------------------------------------------------------------------------------


def test_chat_answers_synchronously_with_provider_and_conversation(harness: Harness) -> None:
    visitor = Visitor(harness, "web-visitor-42")
    first = visitor.say("Hello, my tap is leaking")
    second = visitor.say("I am in Bonapriso")

    assert first.status_code == 200
    assert first.json["provider"] == "claude" and "neighbourhood" in first.json["reply"]
    assert len(first.json["session"]) >= 40 and "session" not in second.json  # issued once, never echoed
    assert first.json["conversation_id"] == second.json["conversation_id"]
    assert "urgent" in second.json["reply"]
    assert second.json["request"] == {
        "service_type": "plomberie",
        "location": "Bonapriso",
        "description": "Hello, my tap is leaking",
        "status": "collecting",
    }


def test_chat_with_a_phone_number_never_reaches_that_whatsapp_customer(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau sous l'évier")
    harness.drain()
    whatsapp_request = harness.runtime.history.requests(CUSTOMER)

    for user in ("237 699 000 001", CUSTOMER, f"whatsapp:{CUSTOMER}"):
        response = chat(harness, "Je suis à Akwa, c'est urgent", user=user)
        suggested = suggest(harness, user=user, message="Je suis à Akwa")

        assert response.status_code == 200
        assert response.json["conversation_id"] != harness.runtime.history.find(CUSTOMER).id
        assert "évier" not in json.dumps(response.json, ensure_ascii=False)  # nothing of the customer's request
        assert customer_of(harness, response.json["conversation_id"]).startswith("chat:")
        assert suggested.status_code == 200 and suggested.json["conversation_id"] is None  # only the message
    assert harness.runtime.history.requests(CUSTOMER) == whatsapp_request  # read nor written


def test_concurrent_posts_of_one_session_make_one_request_and_keep_every_turn(make_harness) -> None:
    harness = make_harness(CHAT_MODEL_SLOTS="4")  # the four posts must all be with the model at once
    visitor = Visitor(harness)
    visitor.say("Hello")
    posts = ["My tap is leaking", "I am in Bonapriso", "It is urgent", "Water everywhere in the kitchen"]
    all_asked = threading.Barrier(len(posts), timeout=10)

    def model(request) -> str:  # answers only once every post has read the conversation and asked
        all_asked.wait()
        return djobea_model_reply(request)

    harness.emulator.set_responder("claude", model)
    responses: list = []

    def post(text: str) -> None:
        responses.append(visitor.say(text, client=harness.app.test_client()))

    threads = [threading.Thread(target=post, args=(text,)) for text in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [200] * 4 and {r.json["provider"] for r in responses} == {"claude"}
    customer = customer_of(harness, responses[0].json["conversation_id"])
    [request] = harness.runtime.history.requests(customer)
    assert (request["service_type"], request["location"]) == ("plomberie", "Bonapriso")
    conversation = harness.runtime.history.find(customer)
    stored = [r[0] for r in harness.runtime.store.db.execute(
        "select content from conversation_messages where conversation_id = ? and role = 'user'", [conversation.id]
    )]  # fmt: skip
    assert sorted(stored) == sorted(["Hello", *posts])


def test_unanswered_turn_is_stored_whole_or_not_at_all(harness: Harness) -> None:
    turn = Turn(customer_id="chat:u5", text="Bonjour, j'ai une fuite d'eau", channel="chat")

    with pytest.raises(RuntimeError), harness.runtime.store.immediate() as db:
        harness.runtime.engine.commit_unanswered(db, turn, "fr")
        raise RuntimeError("the process dies before the turn's transaction ends")

    assert harness.runtime.history.find("chat:u5") is None
    assert harness.runtime.store.db.execute("select count(*) from conversation_messages").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"user": 42, "message": "hi"}, "'user' must be a non-empty string"),
        ({"user": "u1"}, "'message' must be a non-empty string"),
        ({"session": 42, "message": "hi"}, "'session' must be a non-empty string"),
        ({"user": "u1", "message": 42}, "'message' must be a non-empty string"),
        ({"user": "u1", "message": "x" * 5000}, "longer than 4096"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_chat_bad_input_gets_400_with_reason(harness: Harness, body, reason: str) -> None:
    response = harness.client.post("/webhook/chat", json=body)

    assert response.status_code == 400 and reason in response.json["detail"]


@pytest.mark.parametrize("field", ["user", "message", "session"])
@pytest.mark.parametrize("route", ["/webhook/chat", "/api/ai-suggestions/generate"])
def test_lone_surrogate_is_400_before_any_model_is_asked(harness: Harness, route: str, field: str) -> None:
    body = {"user": "u1", "message": "Bonjour"} | {field: "fuite \ud800 d'eau"}

    response = harness.client.post(route, json=body)

    assert response.status_code == 400 and f"'{field}' is not valid Unicode" in response.json["detail"]
    assert harness.emulator.call_count() == 0


@pytest.mark.parametrize("route", ["/webhook/chat", "/api/ai-suggestions/generate"])
def test_json_nested_too_deep_is_400(harness: Harness, route: str) -> None:
    response = harness.client.post(route, data="[" * 100_000, content_type="application/json")

    assert response.status_code == 400 and "nests too deeply" in response.json["detail"]


def test_chat_rejects_non_json(harness: Harness) -> None:
    response = harness.client.post("/webhook/chat", data="user=u1&message=hi")

    assert response.status_code == 400 and "application/json" in response.json["detail"]


def test_chat_when_all_providers_are_down_keeps_the_message_and_holds(harness: Harness) -> None:
    for provider in PROVIDERS:
        harness.emulator.set_fault(provider, "server_error")

    visitor = Visitor(harness)
    held = visitor.say("Bonjour, j'ai une fuite d'eau")
    for provider in PROVIDERS:
        harness.emulator.clear_fault(provider)
    answered = visitor.say("Je suis à Akwa")

    assert held.status_code == 200 and held.json["session"]  # the conversation exists: it gets its token
    assert held.json["holding"] is True and held.json["provider"] is None
    assert held.json["reply"] == HOLDING_REPLY["fr"]
    # The unanswered message was kept: the model sees it with the new one and knows both things.
    assert "urgent" in answered.json["reply"]
    assert answered.json["request"]["service_type"] == "plomberie"
    assert answered.json["request"]["location"] == "Akwa"


# --- suggestions ------------------------------------------------------------------------------------------


def test_suggestions_are_three_short_ones_in_the_customer_language(harness: Harness) -> None:
    visitor = Visitor(harness)
    visitor.say("Hello, my fridge stopped working")

    response = visitor.suggest()

    assert response.status_code == 200
    items = response.json["suggestions"]
    assert len(items) == 3 and all(len(item) <= 50 for item in items)
    assert response.json["language"] == "en" and response.json["fallback"] is False
    assert items == ["I am in Akwa", "I am in Bonamoussadi", "I am in Makepe"]  # what is missing: location


def test_suggestions_for_a_message_alone(harness: Harness) -> None:
    response = suggest(harness, message="Bonjour, je cherche un électricien")

    assert response.json["language"] == "fr" and len(response.json["suggestions"]) == 3


@pytest.mark.parametrize(
    "bad_output",
    [
        {"suggestions": ["one", "two"]},
        {"suggestions": ["one", "two", "three", "four"]},
        {"suggestions": ["a" * 51, "two", "three"]},
        {"suggestions": ["same", "same", "same"]},
        "not json at all",
    ],
    ids=["two", "four", "too-long", "duplicates", "not-json"],
)
def test_invalid_suggestions_go_to_the_next_provider(harness: Harness, bad_output) -> None:
    text = bad_output if isinstance(bad_output, str) else json.dumps(bad_output)
    harness.emulator.set_responder("claude", lambda request: text)

    response = suggest(harness, message="Hello, my power is out")

    assert response.json["provider"] == "gemini"
    assert len(response.json["suggestions"]) == 3
    assert all(len(item) <= 50 for item in response.json["suggestions"])


@pytest.mark.parametrize(("message", "language"), [("Bonjour", "fr"), ("Hello, my tap is leaking", "en")])
def test_suggestions_when_all_down_are_defaults_marked_fallback(harness: Harness, message: str, language: str) -> None:
    for provider in PROVIDERS:
        harness.emulator.set_fault(provider, "server_error")

    response = suggest(harness, message=message)

    assert response.status_code == 200
    assert response.json == {
        "suggestions": DEFAULT_SUGGESTIONS[language],
        "language": language,
        "provider": None,
        "fallback": True,
        "conversation_id": None,
    }
    assert all(len(item) <= 50 for defaults in DEFAULT_SUGGESTIONS.values() for item in defaults)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "give 'session'"),
        ({"user": "u1"}, "'user' alone names no conversation"),
        ({"user": ""}, "'user' must be"),
        ({"message": ["x"]}, "'message' must be"),
    ],
)
def test_suggestions_bad_input_gets_400(harness: Harness, body: dict, reason: str) -> None:
    response = suggest(harness, **body)

    assert response.status_code == 400 and reason in response.json["detail"]


def test_chat_message_every_provider_refuses_asks_to_rephrase_and_stays_out_of_later_prompts(
    harness: Harness,
) -> None:
    for provider in PROVIDERS:
        harness.emulator.set_fault(provider, "content_policy")
    visitor = Visitor(harness)
    refused = visitor.say("Bonjour, message refusé partout")
    for provider in PROVIDERS:
        harness.emulator.clear_fault(provider)

    answered = visitor.say("Bonjour, j'ai une fuite d'eau")

    assert refused.json["reply"] == NOT_PROCESSED_REPLY["fr"] and refused.json["holding"] is False
    assert answered.json["provider"] == "claude"
    last_prompt = harness.emulator.calls("claude")[-1].request.messages
    assert all("refusé partout" not in message["content"] for message in last_prompt)
