"""Sandbox mode: a local emulator of the Anthropic, Gemini and OpenAI HTTP APIs and of Twilio's Messages API,
for tests, benchmarks and demos (``scripted_model`` answers the Djobea prompts as a model would).

``ProviderEmulator`` is re-exported lazily so that ``python -m bot.sandbox.emulator`` does not import the
module twice (runpy warns when a package eagerly imports the module it is about to run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.sandbox.emulator import ProviderEmulator

__all__ = ["ProviderEmulator"]


def __getattr__(name: str) -> Any:
    if name == "ProviderEmulator":
        from bot.sandbox.emulator import ProviderEmulator

        return ProviderEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
