"""POST /webhook/chat (synchronous, same engine and history) and POST /api/ai-suggestions/generate."""

from __future__ import annotations

import json

import pytest

from bot.conversation.fixed_replies import DEFAULT_SUGGESTIONS, HOLDING_REPLY
from tests.whatsapp.conftest import CUSTOMER, Harness

PROVIDERS = ("claude", "gemini", "openai")


def chat(harness: Harness, user: str, message: str):
    return harness.client.post("/webhook/chat", json={"user": user, "message": message})


def suggest(harness: Harness, **body):
    return harness.client.post("/api/ai-suggestions/generate", json=body)


# --- chat -------------------------------------------------------------------------------------------------


def test_chat_answers_synchronously_with_provider_and_conversation(harness: Harness) -> None:
    first = chat(harness, "web-visitor-42", "Hello, my tap is leaking")
    second = chat(harness, "web-visitor-42", "I am in Bonapriso")

    assert first.status_code == 200
    assert first.json["provider"] == "claude" and "neighbourhood" in first.json["reply"]
    assert first.json["conversation_id"] == second.json["conversation_id"]
    assert "urgent" in second.json["reply"]
    assert second.json["request"] == {
        "service_type": "plomberie",
        "location": "Bonapriso",
        "description": "Hello, my tap is leaking",
        "status": "collecting",
    }


def test_chat_with_a_phone_number_continues_the_whatsapp_conversation(harness: Harness) -> None:
    harness.whatsapp("Bonjour, j'ai une fuite d'eau")
    harness.drain()

    response = chat(harness, "237 699 000 001", "Je suis à Akwa")

    assert response.json["conversation_id"] == harness.runtime.history.find(CUSTOMER).id
    assert "urgent" in response.json["reply"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"message": "hi"}, "'user' must be a non-empty string"),
        ({"user": "u1"}, "'message' must be a non-empty string"),
        ({"user": "u1", "message": 42}, "'message' must be a non-empty string"),
        ({"user": "u1", "message": "x" * 5000}, "longer than 4096"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_chat_bad_input_gets_400_with_reason(harness: Harness, body, reason: str) -> None:
    response = harness.client.post("/webhook/chat", json=body)

    assert response.status_code == 400 and reason in response.json["detail"]


def test_chat_rejects_non_json(harness: Harness) -> None:
    response = harness.client.post("/webhook/chat", data="user=u1&message=hi")

    assert response.status_code == 400 and "application/json" in response.json["detail"]


def test_chat_when_all_providers_are_down_keeps_the_message_and_holds(harness: Harness) -> None:
    for provider in PROVIDERS:
        harness.emulator.set_fault(provider, "server_error")

    held = chat(harness, "u7", "Bonjour, j'ai une fuite d'eau")
    for provider in PROVIDERS:
        harness.emulator.clear_fault(provider)
    answered = chat(harness, "u7", "Je suis à Akwa")

    assert held.status_code == 200
    assert held.json["holding"] is True and held.json["provider"] is None
    assert held.json["reply"] == HOLDING_REPLY["fr"]
    # The unanswered message was kept: the model sees it with the new one and knows both things.
    assert "urgent" in answered.json["reply"]
    assert answered.json["request"]["service_type"] == "plomberie"
    assert answered.json["request"]["location"] == "Akwa"


# --- suggestions ------------------------------------------------------------------------------------------


def test_suggestions_are_three_short_ones_in_the_customer_language(harness: Harness) -> None:
    chat(harness, "u1", "Hello, my fridge stopped working")

    response = suggest(harness, user="u1")

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
    [({}, "give 'user'"), ({"user": ""}, "'user' must be"), ({"message": ["x"]}, "'message' must be")],
)
def test_suggestions_bad_input_gets_400(harness: Harness, body: dict, reason: str) -> None:
    response = suggest(harness, **body)

    assert response.status_code == 400 and reason in response.json["detail"]
