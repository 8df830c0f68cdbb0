"""``DailySpend``: what the LLM calls of the last 24 hours cost (``llm_calls.cost_usd``), cheap to ask often.

The budget gate asks before every chat or suggestions request. Summing a day of ``llm_calls`` each time reads
every row of the day (tens of milliseconds at 100k calls a day), and ``llm_call_totals`` cannot help: it holds
running totals since the beginning, not a window. So each process sums the day once, then moves the window
along: it adds the calls that started since and takes off those that left it, two short index ranges.

Rows are written when an attempt ends, with the time it started: a row may appear up to a request deadline
after its ``started_at``. Only rows older than ``SETTLED_S`` are folded into the kept sum; newer ones are read
afresh on every ask. The whole day is summed again every ``RECOUNT_S`` (retention may delete rows, floats drift).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bot.store import Store

DAY_S = 86400.0
SETTLED_S = 300.0  # far beyond an attempt's deadline (25 s) and LiteLLM's late callbacks
RECOUNT_S = 3600.0


class DailySpend:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._settled = 0.0  # cost of the calls that started in [_since, _until)
        self._since: float | None = None
        self._until = 0.0
        self._counted_at = 0.0

    def last_24h(self) -> float:
        """USD spent on calls that started in the last 24 hours, as recorded so far."""
        now = self.clock()
        since, until = now - DAY_S, now - SETTLED_S
        with self._lock:
            if self._since is None or now - self._counted_at >= RECOUNT_S or since < self._since:
                self._settled = self._sum(since, until)
                self._counted_at = now
            else:
                self._settled += self._sum(self._until, until) - self._sum(self._since, since)
            self._since, self._until = since, until
            return max(0.0, self._settled) + self._sum(until, float("inf"))

    def oldest_paid_call(self) -> float | None:
        """When the oldest call of the window that cost something started: the spend falls once it leaves."""
        row = self.store.db.execute(
            "select min(started_at) from llm_calls where started_at >= ? and cost_usd > 0", [self.clock() - DAY_S]
        ).fetchone()
        return row[0]

    def _sum(self, low: float, high: float) -> float:
        row = self.store.db.execute(
            "select total(cost_usd) from llm_calls where started_at >= ? and started_at < ?", [low, high]
        ).fetchone()
        return float(row[0])
