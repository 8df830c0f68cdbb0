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


def test_a_parser_error_quoting_half_an_emoji_is_recorded_not_a_crash(llm: LLMService, emulator) -> None:
    emulator.set_responder("claude", lambda request: "\ud83d broken")

    def reject(text: str) -> str:
        raise ValueError(f"not JSON: {text!s}")

    completion = llm.complete([{"role": "user", "content": "hello"}], validate=lambda t: t if "[" in t else reject(t))

    assert completion.provider == "gemini"
    [rejected] = [r for r in llm.ledger.for_request(completion.request_id) if r["provider"] == "claude"]
    assert rejected["error_kind"] == "bad_output" and "\\ud83d" in rejected["error_message"]
