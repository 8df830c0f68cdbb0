"""HTTP responses and latency per route, tallied by each web process and summed in SQLite for ``/metrics``.

Why SQLite rather than prometheus-client's own counters: under gunicorn each worker would report only its
share, and the library's multiprocess mode needs ``PROMETHEUS_MULTIPROC_DIR`` set before the import in every
worker plus a directory wiped per deployment, global state the rest of ``/metrics`` does without. Here each
process tallies in memory and adds its tallies to shared totals (``http_response_totals``,
``http_latency_totals``) every ``FLUSH_EVERY_S`` and before its ``/metrics`` reads them, so any worker's scrape
sums every worker's: a few upserts per process per interval, never a write per request. Another worker's last
interval may be missing from a scrape (it comes in the next one), and a worker killed with SIGKILL loses at
most its last interval; a graceful exit flushes.

Labels stay few: ``route`` is the URL rule (``/api/llm/providers/<name>/<action>``, never the raw path) or
``<unmatched>`` for a path no rule takes, ``method`` one of the usual verbs or ``OTHER``, ``status`` the code.
"""

from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import time
import weakref
from collections import defaultdict

from flask import Flask, Response, request, request_finished, request_started
from prometheus_client import CollectorRegistry

from bot.admin.call_rollup import le_label
from bot.admin.prometheus_collector import HttpMetricsCollector
from bot.store import Store
from bot.web.app_services import services_of
from bot.web.metrics import REGISTRY_KEY as METRICS_REGISTRY_KEY

log = logging.getLogger(__name__)

EXTENSION_KEY = "djobea.http_metrics"
FLUSH_EVERY_S = 5.0  # under any usual scrape interval, so a scrape is at most one interval behind
# Bucket upper bounds in seconds: the webhook answers in milliseconds, the synchronous chat route waits for a
# model (request deadline 25 s).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STARTED = "djobea.http_metrics.started"


class HttpTallies:
    """This process's responses and latencies not yet added to the shared totals."""

    def __init__(self, store: Store, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.store = store
        self.flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._responses: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0, 0.0])
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
        self._flusher: threading.Thread | None = None

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            tally = self._responses[(route, method, status)]
            tally[0] += 1
            tally[1] += seconds
            buckets = self._buckets[(route, method)]
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    buckets[i] += 1
            buckets[-1] += 1  # +Inf
            if self._flusher is None:  # started by the first request, so an app that serves nothing has no thread
                self._flusher = threading.Thread(
                    target=_flush_periodically, args=(weakref.ref(self), self.flush_every_s), daemon=True,
                    name="http-metrics-flush",
                )  # fmt: skip
                self._flusher.start()
                atexit.register(_flush_at_exit, weakref.ref(self))

    def flush(self) -> None:
        """Add what this process tallied to the shared totals, in one transaction; kept for later if it fails."""
        with self._lock:
            responses, self._responses = self._responses, defaultdict(lambda: [0, 0.0])
            buckets, self._buckets = self._buckets, defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
        if not responses:
            return
        try:
            with self.store.immediate() as db:
                for (route, method, status), (count, seconds) in responses.items():
                    db.execute(
                        "insert into http_response_totals (route, method, status, responses, duration_s_sum)"
                        " values (?, ?, ?, ?, ?) on conflict (route, method, status) do update set"
                        " responses = responses + excluded.responses,"
                        " duration_s_sum = duration_s_sum + excluded.duration_s_sum",
                        [route, method, status, count, seconds],
                    )
                for (route, method), counts in buckets.items():
                    for bound, count in zip([*LATENCY_BUCKETS_S, None], counts, strict=True):
                        db.execute(
                            "insert into http_latency_totals (route, method, le, requests) values (?, ?, ?, ?)"
                            " on conflict (route, method, le) do update set requests = requests + excluded.requests",
                            [route, method, le_label(bound), count],
                        )
        except sqlite3.Error:
            log.warning("HTTP metrics not saved yet; kept for the next flush", exc_info=True)
            self._merge_back(responses, buckets)

    def _merge_back(self, responses: dict, buckets: dict) -> None:
        with self._lock:
            for key, (count, seconds) in responses.items():
                self._responses[key][0] += count
                self._responses[key][1] += seconds
            for key, counts in buckets.items():
                mine = self._buckets[key]
                for i, count in enumerate(counts):
                    mine[i] += count


def _flush_periodically(ref: weakref.ref[HttpTallies], every_s: float) -> None:
    while True:
        time.sleep(every_s)
        tallies = ref()
        if tallies is None:  # its app is gone
            return
        tallies.flush()
        del tallies


def _flush_at_exit(ref: weakref.ref[HttpTallies]) -> None:
    tallies = ref()
    if tallies is not None:
        try:
            tallies.flush()
        except Exception:  # the process is leaving: a lost tally must not hide why it leaves
            log.debug("HTTP metrics lost at exit", exc_info=True)


def init_app(app: Flask) -> None:
    """Count every response of ``app`` by route, method and status, with its latency, and expose the totals on
    its ``/metrics`` (register after the metrics area)."""
    registry: CollectorRegistry | None = app.extensions.get(METRICS_REGISTRY_KEY)
    if registry is None:
        raise RuntimeError("bot.web.http_metrics.init_app needs the metrics area (bot.web.metrics) registered first")
    store = services_of(app).store
    tallies = HttpTallies(store, float(app.config.get("HTTP_METRICS_FLUSH_S", FLUSH_EVERY_S)))
    app.extensions[EXTENSION_KEY] = tallies
    # A scrape first adds this process's own tallies, so what it reads includes them at once.
    registry.register(HttpMetricsCollector(store, before_collect=tallies.flush))

    def started(sender: Flask, **_: object) -> None:
        request.environ[_STARTED] = time.perf_counter()

    def finished(sender: Flask, response: Response, **_: object) -> None:
        began = request.environ.get(_STARTED)
        if began is None:
            return
        seconds = time.perf_counter() - began
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        tallies.record(route, request.method if request.method in METHODS else "OTHER", response.status_code, seconds)

    # Signals, not before/after_request: they fire even when an earlier hook answers (a refusal, a limit).
    # weak=False: the receivers are closures that nothing else holds; sender=app keeps other apps' requests out.
    request_started.connect(started, app, weak=False)
    request_finished.connect(finished, app, weak=False)


__all__ = ["FLUSH_EVERY_S", "LATENCY_BUCKETS_S", "UNMATCHED", "HttpTallies", "init_app"]
