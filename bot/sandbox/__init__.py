"""Sandbox mode: a local emulator of the LLM provider HTTP APIs, for tests, benchmarks and demos."""

from bot.sandbox.emulator import ProviderEmulator

__all__ = ["ProviderEmulator"]
