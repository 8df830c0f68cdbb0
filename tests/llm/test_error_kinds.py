"""One test per row of the classification table, replaying what the provider really sends."""

from __future__ import annotations

import pytest

from bot.llm.error_kinds import ANY, ERROR_TABLE, POLICIES, ErrorKind, classify
from bot.redaction import redact_secrets


@pytest.mark.parametrize("rule", ERROR_TABLE, ids=lambda r: f"{r.provider}-{r.status}-{r.kind.value}")
def test_each_row_classifies_its_own_example(rule) -> None:
    family = "anthropic" if rule.provider == ANY else rule.provider
    status = rule.status if rule.status is not None else 500
    assert classify(family, status, rule.example).kind is rule.kind


def test_every_kind_has_a_policy() -> None:
    assert set(POLICIES) == set(ErrorKind)


@pytest.mark.parametrize(
    ("family", "status", "message", "kind"),
    [
        # A Gemini per-minute limit uses the same words as a spent quota; only retryDelay tells them apart.
        ("gemini", 429, 'exceeded your current quota ... billing ... "retryDelay": "17s"', ErrorKind.RATE_LIMITED),
        ("gemini", 429, "quotaId: GenerateRequestsPerDayPerProjectPerModel", ErrorKind.CREDIT_EXHAUSTED),
        ("openai", 429, "Rate limit reached for gpt-4o-mini", ErrorKind.RATE_LIMITED),
        ("anthropic", 400, "messages: field required", ErrorKind.BAD_REQUEST),
        ("anthropic", 529, "overloaded_error", ErrorKind.SERVER_ERROR),
        ("openai", 500, "InternalServerError: OpenAIException - Connection error.", ErrorKind.NETWORK),
        ("openai", 500, "Empty or invalid response from LLM endpoint. Received: '<html>'", ErrorKind.BAD_OUTPUT),
        ("anthropic", None, "something nobody has seen before", ErrorKind.SERVER_ERROR),
        ("mistral", 418, "teapot", ErrorKind.BAD_REQUEST),
    ],
)
def test_edge_cases(family: str, status: int | None, message: str, kind: ErrorKind) -> None:
    assert classify(family, status, message).kind is kind


def test_retry_after_comes_from_header_or_gemini_retry_delay() -> None:
    assert classify("openai", 429, "slow down", {"Retry-After": "12"}).retry_after_s == 12
    assert classify("gemini", 429, '"retryDelay": "33s"').retry_after_s == 33
    assert classify("anthropic", 429, "slow down").retry_after_s is None


def test_secrets_are_redacted_from_provider_messages() -> None:
    text = "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Request to ...?key=AIzaSyA1234567890abcdef"
    cleaned = redact_secrets(text, known_secrets=("my-own-secret-key",))
    assert "abcdefghijklmnop" not in cleaned and "AIzaSy" not in cleaned
    assert redact_secrets("token my-own-secret-key", known_secrets=("my-own-secret-key",)) == "token ***"
