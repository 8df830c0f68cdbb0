"""Running totals of ``llm_calls`` below a watermark: monotonic counters that survive retention.

Prometheus counters must never go down, yet retention deletes old ``llm_calls`` rows, and a scrape
should not scan months of rows. So rows older than the watermark are folded into ``llm_call_totals``
and ``llm_latency_totals``; a scrape reads those totals plus the recent tail above the watermark.
The watermark trails now by ``ROLLUP_LAG_S``: an attempt's row is written when it ends (and may be
marked rejected just after), never minutes later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

from bot.store import Store

ROLLUP_LAG_S = 600.0
WATERMARK = "llm_calls"
# Latency histogram bucket bounds, in seconds (Prometheus convention), cumulative; +Inf is implied.
LATENCY_BUCKETS_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
INF = "+Inf"


def watermark(db: sqlite_utils.Database) -> float:
    rows = list(db.query("select watermark from llm_rollup where name = ?", [WATERMARK]))
    return rows[0]["watermark"] if rows else 0.0


def roll_up(store: Store, clock: Callable[[], float] = time.time) -> float:
    """Fold rows older than now - ROLLUP_LAG_S into the totals; returns the new watermark."""
    with store.immediate() as db:
        low = watermark(db)
        high = clock() - ROLLUP_LAG_S
        if high <= low:
            return low
        for row in call_counts(db, low, high):
            db.execute(
                "insert into llm_call_totals (provider, purpose, outcome, error_kind, attempts, latency_ms_sum,"
                " input_tokens, output_tokens, cost_usd) values (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " on conflict (provider, purpose, outcome, error_kind) do update set"
                " attempts = attempts + excluded.attempts, latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,"
                " input_tokens = input_tokens + excluded.input_tokens,"
                " output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd",
                [row[k] for k in _CALL_COLUMNS],
            )
        for row in latency_counts(db, low, high):
            db.execute(
                "insert into llm_latency_totals (provider, outcome, le, attempts) values (?, ?, ?, ?)"
                " on conflict (provider, outcome, le) do update set attempts = attempts + excluded.attempts",
                [row["provider"], row["outcome"], row["le"], row["attempts"]],
            )
        db["llm_rollup"].upsert({"name": WATERMARK, "watermark": high}, pk="name")
        return high


_CALL_COLUMNS = (
    "provider",
    "purpose",
    "outcome",
    "error_kind",
    "attempts",
    "latency_ms_sum",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)


def call_counts(db: sqlite_utils.Database, low: float, high: float | None = None) -> list[dict]:
    """Attempts in [low, high) grouped as in ``llm_call_totals``."""
    return list(
        db.query(
            "select provider, purpose, outcome, coalesce(error_kind, '') as error_kind, count(*) as attempts,"
            " coalesce(sum(latency_ms), 0.0) as latency_ms_sum, coalesce(sum(input_tokens), 0) as input_tokens,"
            " coalesce(sum(output_tokens), 0) as output_tokens, coalesce(sum(cost_usd), 0.0) as cost_usd"
            " from llm_calls where started_at >= ? and started_at < ?"
            " group by provider, purpose, outcome, coalesce(error_kind, '')",
            [low, high if high is not None else float("inf")],
        )
    )


def latency_counts(db: sqlite_utils.Database, low: float, high: float | None = None) -> list[dict]:
    """Cumulative histogram counts (attempts with latency <= le) in [low, high), bucketed by SQLite."""
    bounds = [*LATENCY_BUCKETS_S, None]
    columns = ", ".join(
        f"sum(latency_ms <= {bound * 1000}) as b{i}" if bound is not None else f"count(*) as b{i}"
        for i, bound in enumerate(bounds)
    )
    rows = db.query(
        f"select provider, outcome, {columns} from llm_calls where started_at >= ? and started_at < ?"
        " group by provider, outcome",
        [low, high if high is not None else float("inf")],
    )
    return [
        {"provider": row["provider"], "outcome": row["outcome"], "le": le_label(bound), "attempts": row[f"b{i}"]}
        for row in rows
        for i, bound in enumerate(bounds)
    ]


def le_label(bound: float | None) -> str:
    return INF if bound is None else repr(float(bound))
