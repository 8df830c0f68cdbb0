"""``SuggestionWriter``: three quick replies a customer could send next, each at most 50 characters.

The model's answer must be JSON with exactly three suggestions that fit; anything else counts as bad
output and the next provider is asked. With no provider, fixed defaults in the customer's language are
returned, marked ``fallback``. The prompt reads the same history as a turn, so the same ``PromptBudget``
bounds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from bot.conversation.fixed_replies import DEFAULT_SUGGESTIONS
from bot.conversation.history import ConversationHistory, RequestDraft
from bot.conversation.language import detect_language
from bot.conversation.prompt_budget import PromptBudget
from bot.conversation.prompts import LANGUAGE_NAMES, as_langchain, as_llm_messages, suggestions_prompt
from bot.llm import AllProvidersFailed, LLMService

if TYPE_CHECKING:
    from langchain_core.output_parsers import JsonOutputParser

SUGGESTION_COUNT = 3
SUGGESTION_MAX_CHARS = 50
SUGGESTION_HISTORY_MESSAGES = 6  # the last few exchanges are enough to guess what comes next
NO_NEW_MESSAGE = "[no new message: suggest what the customer could write next]"


@cache
def _json_parser() -> JsonOutputParser:
    from langchain_core.output_parsers import JsonOutputParser  # on first use, as the prompts (``prompts``)

    return JsonOutputParser()


@dataclass(frozen=True)
class Suggestions:
    items: list[str]
    language: str
    provider: str | None
    fallback: bool
    conversation_id: int | None


def parse_suggestions(text: str) -> list[str]:
    """Exactly three distinct, non-empty suggestions of at most 50 characters, or raise."""
    data = _json_parser().parse(text)
    items = data.get("suggestions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("expected a JSON object with a 'suggestions' list")
    cleaned = [item.strip() for item in items if isinstance(item, str) and item.strip()]
    if len(cleaned) != SUGGESTION_COUNT or len(set(cleaned)) != SUGGESTION_COUNT:
        raise ValueError(f"expected {SUGGESTION_COUNT} distinct suggestions, got {len(cleaned)}: {cleaned!r}")
    too_long = [item for item in cleaned if len(item) > SUGGESTION_MAX_CHARS]
    if too_long:
        raise ValueError(f"suggestions over {SUGGESTION_MAX_CHARS} characters: {too_long!r}")
    return cleaned


class SuggestionWriter:
    def __init__(
        self, llm: LLMService, history: ConversationHistory, budget: PromptBudget, deadline_s: float | None = None
    ) -> None:
        self.llm = llm
        self.history = history
        self.budget = budget
        self.deadline_s = deadline_s

    def generate(self, customer_id: str | None = None, message: str | None = None) -> Suggestions:
        """Suggestions for a known customer (their history and open request) and/or the message they wrote."""
        conversation = self.history.find(customer_id) if customer_id else None
        recent = self.history.recent(conversation.id, limit=SUGGESTION_HISTORY_MESSAGES) if conversation else []
        draft = self.history.open_request(conversation.id) if conversation else RequestDraft()
        # The language is read from the customer's whole words, not from a shortened copy and its English note.
        last_text = message or next((m.content for m in reversed(recent) if m.role == "user"), "")
        default = (conversation.language if conversation else None) or "fr"
        known = conversation.language if conversation else None
        language = detect_language(last_text, default=default, current=known) if message else default
        prompt = suggestions_prompt().format_messages(
            language=language,
            language_name=LANGUAGE_NAMES[language],
            draft=json.dumps(draft.known(), ensure_ascii=False),
            missing=", ".join(draft.missing()),
            history=as_langchain(self.budget.history(recent)),
            message=self.budget.message(message) if message else NO_NEW_MESSAGE,
        )
        conversation_id = conversation.id if conversation else None
        try:
            completion = self.llm.complete(
                as_llm_messages(prompt),
                purpose="suggestions",
                max_tokens=200,
                validate=parse_suggestions,
                deadline_s=self.deadline_s,
            )
        except AllProvidersFailed:
            return Suggestions(list(DEFAULT_SUGGESTIONS[language]), language, None, True, conversation_id)
        return Suggestions(completion.parsed, language, completion.provider, False, conversation_id)
