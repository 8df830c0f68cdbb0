"""A hanging primary must not eat the request: attempts share one deadline."""

from __future__ import annotations

import time

import pytest

from bot.llm import AllProvidersFailed, LLMService

MESSAGE = [{"role": "user", "content": "Light don go for my house since morning"}]


def test_hanging_primary_still_yields_a_reply_within_the_deadline(make_llm, emulator) -> None:
    llm: LLMService = make_llm(timeout_s=1.0, request_deadline_s=3)
    emulator.set_fault("claude", "hang")
    llm.prepare()  # the first Router imports LiteLLM: seconds that are not the deadline's
    started = time.monotonic()

    completion = llm.complete(MESSAGE)

    assert completion.provider == "gemini"
    assert time.monotonic() - started < 3
    assert [(a.provider, a.error_kind) for a in completion.attempts] == [("claude", "timeout"), ("gemini", None)]


def test_attempts_never_outlive_the_deadline(make_llm, emulator) -> None:
    llm: LLMService = make_llm(timeout_s=5.0)
    for provider in ("claude", "gemini", "openai"):
        emulator.set_fault(provider, "hang")
    llm.prepare()  # the first Router imports LiteLLM: seconds that are not the deadline's
    started = time.monotonic()

    with pytest.raises(AllProvidersFailed) as raised:
        llm.complete(MESSAGE, deadline_s=1.5)

    # The last attempt's timeout is what was left; the margin is for a loaded CI machine, not for an attempt.
    assert time.monotonic() - started < 1.5 + 1.0
    assert raised.value.attempts and all(a.error_kind == "timeout" for a in raised.value.attempts)
