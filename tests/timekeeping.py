"""Time in tests without sleeping on work: a clock that moves only when told, and polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class FakeClock:
    """Wall-clock time that only moves when a test says so (cooldowns, backoff and leases without waiting)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it is truthy (and return its value) or fail once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
