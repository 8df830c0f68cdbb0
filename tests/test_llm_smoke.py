from bot.llm import LLMService


def test_primary_answers_and_attempt_is_recorded(llm: LLMService, emulator) -> None:
    completion = llm.complete([{"role": "user", "content": "Bonjour, mon robinet fuit"}])
    assert completion.provider == "claude"
    assert "robinet" in completion.text
    rows = llm.ledger.for_request(completion.request_id)
    assert [(r["provider"], r["outcome"]) for r in rows] == [("claude", "success")]
    assert rows[0]["cost_usd"] > 0 and rows[0]["input_tokens"] > 0
    assert emulator.call_count("claude") == 1


def test_malformed_messages_are_refused_before_any_call(llm: LLMService, emulator) -> None:
    import pytest

    for messages in ([], [{"role": "user", "content": "  "}], [{"role": "robot", "content": "hi"}]):
        with pytest.raises(ValueError, match="messages"):
            llm.complete(messages)
    assert emulator.call_count() == 0
