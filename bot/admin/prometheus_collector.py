"""Prometheus metrics computed at scrape time from SQLite, hence right under any number of workers.

prometheus-client's in-process counters would each count one gunicorn worker's share (its multiprocess
mode needs a shared directory and still knows nothing of the scheduler's probes). Reading the ledger at
scrape time sees every process's calls. Counters are the rolled-up totals plus the recent tail of
``llm_calls`` (see ``bot.admin.call_rollup``), read in one snapshot so a concurrent roll-up cannot make
them count twice.

``MessageMetricsCollector`` reads the WhatsApp queues the same way (inbound by state, the oldest pending
message's age, outbound by status and Twilio error code), and ``HttpMetricsCollector`` the HTTP totals every
web process adds to (``bot.web.http_metrics``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import sqlite_utils
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.admin.call_rollup import INF, LATENCY_BUCKETS_S, ROLLUP_LAG_S, call_counts, latency_counts, le_label, roll_up
from bot.admin.call_rollup import watermark as read_watermark
from bot.llm.health import HealthRecord, ProviderHealth, ProviderState
from bot.store import Store


class LLMMetricsCollector(Collector):
    def __init__(
        self,
        store: Store,
        health: ProviderHealth,
        providers: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.health = health
        self.providers = list(providers)
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        if self.clock() - read_watermark(self.store.db) > 2 * ROLLUP_LAG_S:
            roll_up(self.store, self.clock)  # keeps each scrape's tail short even when no scheduler runs
        calls, latencies, runs = self._snapshot()
        yield from self._call_metrics(calls)
        yield self._latency_histogram(latencies, calls)
        yield from self._health_metrics()
        last_run = GaugeMetricFamily(
            "djobea_scheduler_job_last_run_timestamp_seconds",
            "When each scheduled job last started (Unix time): alert if it stops moving.",
            labels=["job"],
        )
        for row in runs:
            last_run.add_metric([row["job"]], row["last_started_at"] or 0)
        yield last_run

    def _snapshot(self) -> tuple[list[dict], list[dict], list[dict]]:
        db = self.store.db
        if not db.conn.in_transaction:
            db.execute("begin")  # one read snapshot (WAL): totals and tail agree on the watermark
        try:
            low = read_watermark(db)
            calls = [*db.query("select * from llm_call_totals"), *call_counts(db, low)]
            latencies = [*db.query("select * from llm_latency_totals"), *latency_counts(db, low)]
            runs = list(db.query("select job, last_started_at from scheduler_runs"))
        finally:
            db.conn.rollback()
        return calls, latencies, runs

    def _call_metrics(self, calls: list[dict]) -> Iterator[Metric]:
        attempts: dict[tuple, float] = defaultdict(float)
        failures: dict[tuple, float] = defaultdict(float)
        tokens: dict[tuple, float] = defaultdict(float)
        cost: dict[tuple, float] = defaultdict(float)
        for row in calls:
            attempts[(row["provider"], row["purpose"], row["outcome"])] += row["attempts"]
            if row["outcome"] == "failure":
                failures[(row["provider"], row["error_kind"] or "unknown")] += row["attempts"]
            tokens[(row["provider"], "input")] += row["input_tokens"] or 0
            tokens[(row["provider"], "output")] += row["output_tokens"] or 0
            cost[(row["provider"],)] += row["cost_usd"] or 0.0
        for name, doc, labels, values in (
            (
                "djobea_llm_attempts",
                "Calls made to each provider (one per attempt, retries and fallbacks included).",
                ["provider", "purpose", "outcome"],
                attempts,
            ),
            ("djobea_llm_failures", "Failed calls by provider and error kind.", ["provider", "error_kind"], failures),
            ("djobea_llm_tokens", "Tokens billed by each provider.", ["provider", "direction"], tokens),
            ("djobea_llm_cost_usd", "Cost of calls in US dollars, as LiteLLM prices them.", ["provider"], cost),
        ):
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key), value)
            yield family

    def _latency_histogram(self, latencies: list[dict], calls: list[dict]) -> Metric:
        counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for row in latencies:
            counts[(row["provider"], row["outcome"])][row["le"]] += row["attempts"]
        sums: dict[tuple[str, str], float] = defaultdict(float)
        for row in calls:
            sums[(row["provider"], row["outcome"])] += (row["latency_ms_sum"] or 0.0) / 1000
        family = HistogramMetricFamily(
            "djobea_llm_attempt_latency_seconds",
            "Latency of calls to each provider, by outcome.",
            labels=["provider", "outcome"],
        )
        for key in sorted(counts):
            buckets = [(le_label(b), counts[key][le_label(b)]) for b in LATENCY_BUCKETS_S]
            family.add_metric(list(key), [*buckets, (INF, counts[key][INF])], sum_value=sums[key])
        return family

    def _health_metrics(self) -> Iterator[Metric]:
        now = self.clock()
        records: list[HealthRecord] = [self.health.get(p) for p in self.providers]
        state = GaugeMetricFamily(
            "djobea_llm_provider_state",
            "1 for the provider's current state, 0 for the others.",
            labels=["provider", "state"],
        )
        usable = GaugeMetricFamily(
            "djobea_llm_provider_usable", "1 when the next request could call this provider.", labels=["provider"]
        )
        failures = GaugeMetricFamily(
            "djobea_llm_provider_consecutive_failures", "Failures in a row of each provider.", labels=["provider"]
        )
        for record in records:
            for candidate in ProviderState:
                state.add_metric([record.provider, candidate.value], 1.0 if record.state == candidate else 0.0)
            usable.add_metric([record.provider], 1.0 if record.takes_traffic_at(now) else 0.0)
            failures.add_metric([record.provider], record.consecutive_failures)
        yield state
        yield usable
        yield failures


@contextmanager
def read_snapshot(store: Store) -> Iterator[sqlite_utils.Database]:
    """One WAL read snapshot for several queries (ended here only if begun here)."""
    db = store.db
    began = not db.conn.in_transaction
    if began:
        db.execute("begin")
    try:
        yield db
    finally:
        if began:
            db.conn.rollback()


INBOUND_STATES = ("pending", "done", "expired", "failed")
# Error codes an operator is paged for, always exposed (0 until one happens): a counter that first appears
# already at 1 shows no increase to Prometheus, and the alert on the first 63016 would never fire.
PAGED_TWILIO_ERRORS = (63016,)


class MessageMetricsCollector(Collector):
    """Inbound and outbound WhatsApp messages as they stand in SQLite at scrape time; ``spooled`` counts the
    messages acknowledged while the database was busy, not yet in the queue (``bot.inbound.spool``)."""

    def __init__(
        self, store: Store, clock: Callable[[], float] = time.time, spooled: Callable[[], int] | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.spooled = spooled

    def collect(self) -> Iterator[Metric]:
        with read_snapshot(self.store) as db:  # the counts and the oldest message agree
            inbound = {row["status"]: row["n"] for row in db.query(INBOUND_BY_STATUS)}
            oldest = db.execute("select min(received_at) from inbound_messages where status = 'pending'").fetchone()[0]
            outbound = list(db.query(OUTBOUND_BY_STATUS))
        now = self.clock()
        states = GaugeMetricFamily(
            "djobea_inbound_messages", "Inbound messages by state (pending, done, expired, failed).", labels=["status"]
        )
        for status in sorted({*INBOUND_STATES, *inbound}):
            states.add_metric([status], inbound.get(status, 0))
        yield states
        yield GaugeMetricFamily(
            "djobea_inbound_oldest_pending_age_seconds",
            "Age of the oldest pending inbound message (0 when none waits): customers waiting on the queue.",
            value=max(0.0, now - oldest) if oldest is not None else 0.0,
        )
        if self.spooled is not None:
            yield GaugeMetricFamily(
                "djobea_inbound_spooled",
                "Inbound messages acknowledged while the database's write lock was busy, not yet moved to the queue"
                " (moved within milliseconds; one that stays up means no web process is moving them).",
                value=self.spooled(),
            )
        messages = GaugeMetricFamily(
            "djobea_outbound_messages",
            "Outbound messages by status and the last Twilio error code they met ('' when none).",
            labels=["status", "error_code"],
        )
        failures: dict[str, float] = {str(code): 0 for code in PAGED_TWILIO_ERRORS}
        for row in outbound:
            code = "" if row["error_code"] is None else str(row["error_code"])
            messages.add_metric([row["status"], code], row["n"])
            if row["status"] in ("failed", "undelivered") and code:
                failures[code] = failures.get(code, 0) + row["n"]
        yield messages
        errors = CounterMetricFamily(
            "djobea_twilio_message_failures",
            "Outbound messages that ended failed or undelivered with a Twilio error code (63016: outside the"
            " 24-hour window).",
            labels=["error_code"],
        )
        for code, count in sorted(failures.items()):
            errors.add_metric([code], count)
        yield errors


INBOUND_BY_STATUS = "select status, count(*) as n from inbound_messages group by status"
OUTBOUND_BY_STATUS = (
    "select status, error_code, count(*) as n from outbound_messages group by status, error_code order by 1, 2"
)


class HttpMetricsCollector(Collector):
    """HTTP responses and latency per route, from the totals every web process adds to."""

    def __init__(self, store: Store, before_collect: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.before_collect = before_collect  # adds this process's own tallies first

    def collect(self) -> Iterator[Metric]:
        self.before_collect()
        with read_snapshot(self.store) as db:  # a flush writes both tables in one transaction
            responses = list(db.query("select * from http_response_totals order by route, method, status"))
            latencies = list(db.query("select * from http_latency_totals"))
        counter = CounterMetricFamily(
            "djobea_http_responses",
            "HTTP responses by route (the URL rule, or <unmatched>), method and status code.",
            labels=["route", "method", "status"],
        )
        sums: dict[tuple[str, str], float] = defaultdict(float)
        for row in responses:
            counter.add_metric([row["route"], row["method"], str(row["status"])], row["responses"])
            sums[(row["route"], row["method"])] += row["duration_s_sum"]
        yield counter
        buckets: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for row in latencies:
            buckets[(row["route"], row["method"])][row["le"]] = row["requests"]
        histogram = HistogramMetricFamily(
            "djobea_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by route and method.",
            labels=["route", "method"],
        )
        for key in sorted(buckets):
            ordered = sorted(buckets[key].items(), key=lambda item: float("inf") if item[0] == INF else float(item[0]))
            histogram.add_metric(list(key), ordered, sum_value=sums[key])
        yield histogram
