"""The prompts of the conversation engine, as langchain-core templates, and their conversion to the
``{"role", "content"}`` messages ``LLMService`` takes (the LLM layer knows nothing of langchain).

The templates are built on first use (``turn_prompt()``, ``suggestions_prompt()``): ``langchain_core.prompts``
imports LangSmith's tracing (20 MB), which the web processes, that only store WhatsApp messages, never need.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from bot.conversation.history import HistoryMessage

if TYPE_CHECKING:
    from langchain_core.prompts import ChatPromptTemplate

LANGUAGE_NAMES = {"fr": "French", "en": "English", "pcm": "Cameroonian Pidgin English"}

TURN_SYSTEM = """You are Djobea, the WhatsApp assistant of a home-services company in Douala, Cameroon.
Customers ask for a plumber (plomberie), an electrician (electricite) or an appliance repairer (electromenager).

Your job: collect one service request with four things: service_type, location (quartier or landmark in Douala, \
or a shared WhatsApp location), description (the problem in a few words) and urgency (how urgent, or the \
preferred day and time).
- Ask for ONE missing thing at a time, in a short friendly message (at most 3 sentences).
- When all four are known, summarise them and ask the customer to confirm.
- When the customer confirms the summary, set customer_confirmed to true, thank them and say a technician \
will call them soon. Never promise a price or an exact arrival time.
- Answer in the customer's language: French (fr), English (en) or Cameroonian Pidgin English (pcm).
  The customer seems to write in: {language} ({language_name}).

Request so far (JSON): {draft}
Still missing: {missing}

{format_instructions}"""

SUGGESTIONS_SYSTEM = """You write quick-reply suggestions for a customer of Djobea, a home-services company in \
Douala (plumbing, electrical work, appliance repair), chatting on WhatsApp.
Propose exactly 3 short messages the customer could send next, each at most 50 characters, in the customer's \
language: {language} ({language_name}).

Request so far (JSON): {draft}
Still missing: {missing}

Answer with JSON only, in this shape: {{"suggestions": ["...", "...", "..."]}}"""


@cache
def turn_prompt() -> ChatPromptTemplate:
    return _chat_prompt(TURN_SYSTEM)


@cache
def suggestions_prompt() -> ChatPromptTemplate:
    return _chat_prompt(SUGGESTIONS_SYSTEM)


def _chat_prompt(system: str) -> ChatPromptTemplate:
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

    return ChatPromptTemplate.from_messages(
        [("system", system), MessagesPlaceholder("history"), ("human", "{message}")]
    )


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def as_langchain(history: list[HistoryMessage]) -> list[BaseMessage]:
    return [HumanMessage(m.content) if m.role == "user" else AIMessage(m.content) for m in history]


def as_llm_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """langchain messages -> the plain role/content dicts LiteLLM speaks."""
    return [{"role": _ROLES[m.type], "content": str(m.content)} for m in messages]
