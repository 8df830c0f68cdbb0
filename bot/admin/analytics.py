"""Analytics of LLM use: queries over ``llm_calls`` and ``provider_events``, never counters in memory.

Every number here is computed by SQLite over a time range that the ``started_at`` index narrows, so
every process (and every gunicorn worker) answers the same. Latency percentiles are nearest-rank
percentiles over *answered* attempts (what a customer waited for a reply); failures are counted by
error kind instead, since a timeout's latency is the timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.llm.health import ProviderState
from bot.store import Store

BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_BUCKETS = 2000  # a chart with more points than this is a mistake in the query, not a wish
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
# Group-by columns a caller may ask for: fixed names, so no caller text ever reaches the SQL.
GROUPS = {
    "provider": ("provider",),
    "provider_purpose": ("provider", "purpose"),
    "bucket_provider": ("bucket", "provider"),
}


class AnalyticsRangeError(ValueError):
    """The requested range or bucket cannot be answered; the message says which parameter and why."""


@dataclass(frozen=True)
class TimeRange:
    since: float
    until: float
    bucket_s: int = 3600

    def __post_init__(self) -> None:
        if not (math.isfinite(self.since) and math.isfinite(self.until)):
            raise AnalyticsRangeError("since/until: must be finite times")
        if self.until <= self.since:
            raise AnalyticsRangeError("until: must be after since")
        if (self.until - self.since) / self.bucket_s > MAX_BUCKETS:
            raise AnalyticsRangeError(f"bucket: the range would need more than {MAX_BUCKETS} buckets; use a larger one")


def attempt_stats(store: Store, window: TimeRange, group: str) -> list[dict]:
    """Attempts in ``window`` grouped by ``group`` (a key of GROUPS): counts, tokens, cost and latency."""
    keys = GROUPS[group]
    cols = ", ".join(keys)
    percentiles = ", ".join(f"min(case when rank >= {q} * n then latency_ms end) as {name}" for name, q in PERCENTILES)
    # Only answered attempts are ranked, over the few columns needed: one sort, narrow rows.
    sql = f"""
        with base as (
            select provider, purpose, outcome, latency_ms, input_tokens, output_tokens, cost_usd, fallback_depth,
                   cast((started_at - :since) / :width as integer) as bucket
            from llm_calls
            where started_at >= :since and started_at < :until
        ), ranked as (
            select {cols}, latency_ms,
                   row_number() over (partition by {cols} order by latency_ms) as rank,
                   count(*) over (partition by {cols}) as n
            from base where outcome = 'success'
        ), latency as (
            select {cols}, {percentiles} from ranked group by {cols}
        ), counts as (
            select {cols},
                count(*) as requests,
                sum(outcome = 'success') as successes,
                sum(outcome = 'failure') as failures,
                sum(outcome = 'success' and fallback_depth > 0) as fallback_successes,
                coalesce(sum(input_tokens), 0) as input_tokens,
                coalesce(sum(output_tokens), 0) as output_tokens,
                coalesce(sum(cost_usd), 0.0) as cost_usd
            from base group by {cols}
        )
        select counts.*, {", ".join(f"latency.{name}" for name, _ in PERCENTILES)}
        from counts left join latency using ({cols})
        order by {", ".join(f"counts.{k}" for k in keys)}
    """
    params = {"since": window.since, "until": window.until, "width": window.bucket_s}
    return [_rounded(row) for row in store.db.query(sql, params)]


def failures_by_kind(store: Store, window: TimeRange, group: str) -> list[dict]:
    cols = ", ".join(GROUPS[group])
    sql = f"""
        select {cols}, coalesce(error_kind, 'unknown') as error_kind, count(*) as failures
        from (select *, cast((started_at - :since) / :width as integer) as bucket from llm_calls
              where started_at >= :since and started_at < :until and outcome = 'failure')
        group by {cols}, error_kind
    """
    return list(store.db.query(sql, {"since": window.since, "until": window.until, "width": window.bucket_s}))


def request_totals(store: Store, window: TimeRange) -> dict:
    """Customer-facing requests (one request_id each, probes excluded): answered, by a fallback, or not at all."""
    sql = """
        select count(*) as requests,
               coalesce(sum(answered), 0) as answered,
               coalesce(sum(answered_by_fallback), 0) as answered_by_fallback
        from (
            select request_id,
                   max(outcome = 'success') as answered,
                   max(outcome = 'success' and fallback_depth > 0) as answered_by_fallback
            from llm_calls
            where started_at >= :since and started_at < :until and purpose != 'selftest'
            group by request_id
        )
    """
    row = next(iter(store.db.query(sql, {"since": window.since, "until": window.until})))
    requests = row["requests"]
    return {
        **row,
        "unanswered": requests - row["answered"],
        "fallback_rate": _ratio(row["answered_by_fallback"], row["answered"]),
    }


def probe_cost_by_day(store: Store, since: float, until: float) -> list[dict]:
    """What the self-test probes cost, per UTC day: they must stay a rounding error next to real traffic."""
    sql = """
        select date(started_at, 'unixepoch') as day, count(*) as probes,
               coalesce(sum(input_tokens), 0) as input_tokens, coalesce(sum(output_tokens), 0) as output_tokens,
               round(coalesce(sum(cost_usd), 0.0), 6) as cost_usd
        from llm_calls
        where purpose = 'selftest' and started_at >= ? and started_at < ?
        group by day order by day
    """
    return [
        {**row, "tokens": row["input_tokens"] + row["output_tokens"]} for row in store.db.query(sql, [since, until])
    ]


def seconds_by_state(store: Store, providers: list[str], since: float, until: float) -> dict[str, dict[str, float]]:
    """Time each provider spent benched, cooling down or disabled within [since, until), from its events."""
    unavailable = (ProviderState.BENCHED.value, ProviderState.COOLING_DOWN.value, ProviderState.DISABLED.value)
    result: dict[str, dict[str, float]] = {}
    for provider in providers:
        before = list(
            store.db.query(
                "select to_state from provider_events where provider = ? and at < ? order by at desc, id desc limit 1",
                [provider, since],
            )
        )
        state = before[0]["to_state"] if before else ProviderState.HEALTHY.value
        totals = dict.fromkeys(unavailable, 0.0)
        cursor = since
        events = store.db.query(
            "select at, to_state from provider_events where provider = ? and at >= ? and at < ? order by at, id",
            [provider, since, until],
        )
        for event in events:
            if state in totals:
                totals[state] += event["at"] - cursor
            state, cursor = event["to_state"], event["at"]
        if state in totals:
            totals[state] += until - cursor
        result[provider] = {k: round(v, 3) for k, v in totals.items()}
    return result


def analytics_report(store: Store, providers: list[str], window: TimeRange) -> dict:
    """Everything ``GET /api/llm/analytics`` answers: per provider and purpose, totals and time series."""
    per_purpose = attempt_stats(store, window, "provider_purpose")
    per_provider = attempt_stats(store, window, "provider")
    kinds = failures_by_kind(store, window, "provider_purpose")
    kinds_by_provider = failures_by_kind(store, window, "provider")
    states = seconds_by_state(store, providers, window.since, window.until)
    total_requests = sum(row["requests"] for row in per_provider)
    total_successes = sum(row["successes"] for row in per_provider)

    def summary(row: dict, kind_rows: list[dict]) -> dict:
        return {
            "requests": row["requests"],
            "successes": row["successes"],
            "failures": row["failures"],
            "failures_by_kind": {k["error_kind"]: k["failures"] for k in kind_rows},
            "success_rate": _ratio(row["successes"], row["requests"]),
            "latency_ms": {name: row[name] for name, _ in PERCENTILES},
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cost_usd": row["cost_usd"],
            "attempt_share": _ratio(row["requests"], total_requests),
            "load_share": _ratio(row["successes"], total_successes),
            "fallback_rate": _ratio(row["fallback_successes"], row["successes"]),
        }

    seen = {row["provider"] for row in per_provider}
    report_providers = []
    for name in [*providers, *sorted(seen - set(providers))]:
        row = next((r for r in per_provider if r["provider"] == name), None) or _empty_row(name)
        entry = {"provider": name, **summary(row, [k for k in kinds_by_provider if k["provider"] == name])}
        entry["seconds_by_state"] = states.get(name, {})
        entry["benched_seconds"] = states.get(name, {}).get(ProviderState.BENCHED.value, 0.0)
        entry["purposes"] = [
            {
                "purpose": p["purpose"],
                **summary(p, [k for k in kinds if k["provider"] == name and k["purpose"] == p["purpose"]]),
            }
            for p in per_purpose
            if p["provider"] == name
        ]
        report_providers.append(entry)

    series = [
        {
            "start": window.since + row["bucket"] * window.bucket_s,
            "provider": row["provider"],
            "requests": row["requests"],
            "successes": row["successes"],
            "failures": row["failures"],
            "success_rate": _ratio(row["successes"], row["requests"]),
            "latency_ms": {name: row[name] for name, _ in PERCENTILES},
            "tokens": row["input_tokens"] + row["output_tokens"],
            "cost_usd": row["cost_usd"],
        }
        for row in attempt_stats(store, window, "bucket_provider")
    ]
    return {
        "since": window.since,
        "until": window.until,
        "bucket_seconds": window.bucket_s,
        "totals": {
            **request_totals(store, window),
            "attempts": total_requests,
            "cost_usd": round(sum(row["cost_usd"] for row in per_provider), 6),
            "tokens": sum(row["input_tokens"] + row["output_tokens"] for row in per_provider),
        },
        "providers": report_providers,
        "series": series,
        "selftest_by_day": probe_cost_by_day(store, window.since, window.until),
    }


def _empty_row(provider: str) -> dict:
    return {
        "provider": provider,
        "requests": 0,
        "successes": 0,
        "failures": 0,
        "fallback_successes": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        **{name: None for name, _ in PERCENTILES},
    }


def _rounded(row: dict) -> dict:
    row = dict(row)
    row["cost_usd"] = round(row["cost_usd"] or 0.0, 6)
    for name, _ in PERCENTILES:
        if row[name] is not None:
            row[name] = round(row[name], 1)
    return row


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
