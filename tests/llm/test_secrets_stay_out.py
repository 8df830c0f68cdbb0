"""API keys never reach the database or the logs, whatever the providers echo back in their errors."""

from __future__ import annotations

import logging

import pytest

from bot.llm import AllProvidersFailed, LLMService


def test_keys_are_absent_from_database_and_logs(make_llm, emulator, provider_env, store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    llm: LLMService = make_llm(timeout_s=0.5)
    for fault in ("auth_failed", "credit_exhausted", "bad_request", "server_error"):
        for provider in ("claude", "gemini", "openai"):
            emulator.set_fault(provider, fault)
        llm.health.reset("claude", "test")
        llm.health.reset("gemini", "test")
        llm.health.reset("openai", "test")
        with pytest.raises(AllProvidersFailed) as raised:
            llm.complete([{"role": "user", "content": "hello"}])
        assert all(key not in str(raised.value) for key in llm.setup.secrets)

    keys = [v for k, v in provider_env.items() if k.endswith("_API_KEY")]
    store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*") if p.is_file())
    dumped = "\n".join(
        str(row) for table in ("llm_calls", "provider_health", "provider_events") for row in store.db[table].rows
    )
    assert dumped  # the failures were recorded
    for key in keys:
        assert key.encode() not in stored
        assert key[-12:] not in dumped
        assert key not in caplog.text
