"""``llm_calls``: one row per attempt at a provider, the ledger behind analytics, costs and status."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bot.redaction import storable
from bot.store import Store

ERROR_MESSAGE_MAX_CHARS = 500


@dataclass
class CallRecord:
    """A row of ``llm_calls``. Messages and replies are not stored here: only what the call cost."""

    id: str
    request_id: str
    started_at: float
    purpose: str
    provider: str
    model: str
    deployment_id: str
    outcome: str  # success | failure
    error_kind: str | None
    http_status: int | None
    latency_ms: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    fallback_depth: int
    retry_index: int
    error_message: str | None
    recorded_by: str


class CallLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, record: CallRecord) -> None:
        row = asdict(record)
        if row["error_message"]:
            row["error_message"] = storable(row["error_message"])[:ERROR_MESSAGE_MAX_CHARS]
        self.store.db["llm_calls"].insert(row, pk="id", replace=True)
        self.store.db.conn.commit()

    def mark_rejected(self, attempt_id: str, error_kind: str, message: str) -> None:
        """A reply the provider sent but the caller could not use (e.g. it did not parse)."""
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
