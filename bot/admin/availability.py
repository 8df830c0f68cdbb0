"""Whether a provider can take a request now, judged from its shared health record without claiming anything.

``ProviderHealth.admit`` answers the same question for a real call but claims the trial lease; the admin
side only looks, so status, /api/llm/health and the self-test policy use this instead.
"""

from __future__ import annotations

from bot.llm.health import HealthRecord, ProviderState

# States in which the provider gets no traffic (cooling_down only until its cooldown ends).
DOWN_STATES = frozenset({ProviderState.BENCHED.value, ProviderState.COOLING_DOWN.value, ProviderState.DISABLED.value})


def is_usable(record: HealthRecord, now: float) -> bool:
    """True when the next request could call this provider (normally, or as the trial after a cooldown)."""
    if record.state in (ProviderState.HEALTHY, ProviderState.DEGRADED):
        return True
    return record.state == ProviderState.COOLING_DOWN and (record.until or 0) <= now
