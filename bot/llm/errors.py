"""The errors the LLM layer raises to its callers.

LLMError
├── RouterConfigError     router_config is missing, unreadable or invalid; the message names the
│                         file and the key. Raised at start-up: the process refuses to start.
└── AllProvidersFailed    no provider produced a usable answer within the deadline; carries every
                          attempt made and every provider skipped (benched, cooling, disabled).
"""

from __future__ import annotations

from dataclasses import dataclass


class LLMError(Exception):
    """Base of the errors this layer raises."""


class RouterConfigError(LLMError):
    """The router configuration cannot be used. The message names the file and the offending key."""


@dataclass(frozen=True)
class Attempt:
    """One call to one provider, as the caller sees it (the full row is in ``llm_calls``)."""

    provider: str
    model: str
    outcome: str  # success | failure
    error_kind: str | None
    latency_ms: float
    http_status: int | None = None
    fallback_depth: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "model": self.model,
            "outcome": self.outcome,
            "error_kind": self.error_kind,
            "latency_ms": round(self.latency_ms, 1),
            "http_status": self.http_status,
        }


class AllProvidersFailed(LLMError):
    """No provider answered usably. ``attempts`` lists the calls made, ``skipped`` the providers not
    called and why (their shared health state)."""

    def __init__(self, attempts: list[Attempt], skipped: dict[str, str], reason: str = "") -> None:
        self.attempts = attempts
        self.skipped = skipped
        tried = ", ".join(f"{a.provider}: {a.error_kind}" for a in attempts) or "none"
        not_called = ", ".join(f"{p}: {s}" for p, s in skipped.items()) or "none"
        super().__init__(f"no provider answered{reason}; tried [{tried}]; skipped [{not_called}]")
