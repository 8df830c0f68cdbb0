"""``PromptBudget``: how much of a stored conversation one prompt may carry.

Nothing upstream bounds a WhatsApp message (a signed 100k-character body is a valid webhook), and every
turn re-sends the history: one such message made each later turn of that customer cost 25.8k input
tokens instead of ~790. Two bounds apply when a prompt is built, never when a message is stored (the
store keeps every message whole):

- one message contributes at most ``message_max_chars`` characters, followed by a line telling the
  model it was shortened;
- the history is the most recent messages that fit ``history_tokens``, counted the way langchain-core
  approximates tokens (about 4 characters each). The open request's fields are in the system prompt,
  outside this budget, so what the customer already told us is never trimmed away.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately

from bot.conversation.history import HistoryMessage


@dataclass(frozen=True)
class PromptBudget:
    message_max_chars: int
    history_tokens: int

    def message(self, text: str) -> str:
        """``text`` as a model may see it: whole, or its start and a note that the rest was left out."""
        if len(text) <= self.message_max_chars:
            return text
        return (
            f"{text[: self.message_max_chars]}\n[message shortened: only the first {self.message_max_chars}"
            f" of its {len(text)} characters are shown]"
        )

    def history(self, messages: list[HistoryMessage]) -> list[HistoryMessage]:
        """The most recent ``messages``, each shortened, that fit the token budget; the first kept is the
        customer's, since providers refuse a conversation that opens with the assistant."""
        shortened: list[BaseMessage] = [
            HumanMessage(self.message(m.content)) if m.role == "user" else AIMessage(self.message(m.content))
            for m in messages
        ]
        kept = trim_messages(
            shortened,
            max_tokens=self.history_tokens,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
        )
        return [HistoryMessage("user" if m.type == "human" else "assistant", str(m.content)) for m in kept]
