"""Djobea AI: a WhatsApp assistant for home services in Douala, answered by several LLM providers.

Layers, one direction of flow: webhook -> store -> worker -> LLM service -> sender. Lower layers never
import upper ones: ``bot.store`` knows nothing of Flask, ``bot.llm`` nothing of WhatsApp.
"""
