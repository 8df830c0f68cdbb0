"""``llm_calls``: one row per attempt at a provider, the ledger behind analytics, costs and status.

``Attempt`` is that row and the only description of an attempt: ``AttemptRecorder`` builds it,
``CallLedger.write`` stores it, and callers get it back in ``Completion.attempts`` and
``AllProvidersFailed.attempts``. Messages and replies are not stored here: only what a call cost and
how it ended.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from bot.redaction import storable

if TYPE_CHECKING:
    from bot.store import Store

ERROR_MESSAGE_MAX_CHARS = 500


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One call to one provider, as written to ``llm_calls``."""

    id: str  # chosen by LLMService before the call: LiteLLM's callback finds the attempt by it
    request_id: str  # shared by the attempts of one LLMService.complete()
    started_at: float
    purpose: str
    provider: str
    model: str
    deployment_id: str
    outcome: str  # success | failure
    error_kind: str | None = None
    http_status: int | None = None
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    fallback_depth: int
    retry_index: int
    error_message: str | None = None  # scrubbed of keys by the recorder
    recorded_by: str  # litellm_callback | llm_service (LiteLLM did not report the attempt in time)

    def as_dict(self) -> dict[str, object]:
        """What a caller shows of an attempt (``bot ask --json``); the full row is ``llm_calls``."""
        return {
            "provider": self.provider,
            "model": self.model,
            "outcome": self.outcome,
            "error_kind": self.error_kind,
            "latency_ms": round(self.latency_ms, 1),
            "http_status": self.http_status,
        }


_COLUMNS = tuple(f.name for f in fields(Attempt))
_INSERT = f"insert into llm_calls ({', '.join(_COLUMNS)}) values ({', '.join('?' for _ in _COLUMNS)})"


class CallLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, attempt: Attempt) -> None:
        """The one way into ``llm_calls``. A plain insert: an attempt written twice is a bug, not an update."""
        row = asdict(attempt)
        if row["error_message"]:
            row["error_message"] = storable(row["error_message"])[:ERROR_MESSAGE_MAX_CHARS]
        # A prepared statement, not sqlite-utils' insert: that one reads the table's schema on every call,
        # which cost 0.3 ms of the 0.4 ms a successful attempt waited for its row (benchmarks/llm_core.py).
        self.store.db.conn.execute(_INSERT, [row[column] for column in _COLUMNS])
        self.store.db.conn.commit()

    def mark_rejected(self, attempt_id: str, error_kind: str, message: str) -> None:
        """A reply the provider sent but the caller could not use (e.g. it did not parse): the same
        row turns into a failure, keeping the tokens and cost the reply did spend."""
        self.store.db.execute(
            "update llm_calls set outcome = 'failure', error_kind = ?, error_message = ? where id = ?",
            [error_kind, storable(message)[:ERROR_MESSAGE_MAX_CHARS], attempt_id],
        )
        self.store.db.conn.commit()

    def for_request(self, request_id: str) -> list[dict]:
        return list(
            self.store.db.query(
                "select * from llm_calls where request_id = ? order by started_at, retry_index", [request_id]
            )
        )
