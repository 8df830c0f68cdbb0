"""The errors the LLM layer raises to its callers.

LLMError
├── RouterConfigError     router_config is missing, unreadable or invalid; the message names the
│                         file and the key. Raised at start-up: the process refuses to start.
└── AllProvidersFailed    no provider produced a usable answer within the deadline; carries every
                          attempt made (its ``llm_calls`` row) and every provider skipped (benched,
                          cooling, disabled).
"""

from __future__ import annotations

from bot.llm.call_ledger import Attempt


class LLMError(Exception):
    """Base of the errors this layer raises."""


class RouterConfigError(LLMError):
    """The router configuration cannot be used. The message names the file and the offending key."""


class AllProvidersFailed(LLMError):
    """No provider answered usably. ``attempts`` lists the calls made, ``skipped`` the providers not
    called and why (their shared health state)."""

    def __init__(self, attempts: list[Attempt], skipped: dict[str, str], reason: str = "") -> None:
        self.attempts = attempts
        self.skipped = skipped
        tried = ", ".join(f"{a.provider}: {a.error_kind}" for a in attempts) or "none"
        not_called = ", ".join(f"{p}: {s}" for p, s in skipped.items()) or "none"
        super().__init__(f"no provider answered{reason}; tried [{tried}]; skipped [{not_called}]")


__all__ = ["AllProvidersFailed", "Attempt", "LLMError", "RouterConfigError"]
