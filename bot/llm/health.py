"""``ProviderHealth``: whether each provider may be called, shared by every process through SQLite.

Before each call a worker asks ``admit``; after it, the attempt's outcome moves the provider's state
according to its error kind's policy (see ``bot.llm.error_kinds``)::

    healthy ──transient failure──> degraded ──N in a row──> cooling_down ──until passes──> probe due ──┐
       ^                                                      ^                                          │
       │                                                      └──────── probe fails: longer cooldown ───┤
       └────────────────── any success (traffic, or the probe passing) ─────────────────────────────────┘
    probe due: still refused to customers; the one process holding the probe lease tests the provider.
    credit / auth ──> benched  (no traffic at all until a probe passes or an admin resets)
    admin ──> disabled         (until an admin enables it again)

No customer request tests a cooled provider: once its cooldown is over, ``admit`` still refuses it and
says a probe is due; the first process to notice claims the probe lease (``claim_probe``) and probes it
in the background, and the scheduler's probe does the same when no traffic notices. Only a passing probe
brings it back. Every transition is written with its reason to ``provider_events`` in the same transaction.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.llm.error_kinds import POLICIES, Blame, Classified, provider_message
from bot.llm.router_config import Reliability
from bot.redaction import storable
from bot.store import Store

REASON_MAX_CHARS = 300


class ProviderState(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    COOLING_DOWN = "cooling_down"
    BENCHED = "benched"
    DISABLED = "disabled"


class Admission(enum.Enum):
    NORMAL = "normal"
    REFUSED = "refused"
    PROBE_DUE = "probe_due"  # refused too, but the cooldown is over and nobody is probing the provider yet


@dataclass(frozen=True)
class HealthRecord:
    provider: str
    state: ProviderState
    reason: str | None = None
    error_kind: str | None = None
    since: float | None = None
    until: float | None = None
    consecutive_failures: int = 0
    cooldown_level: int = 0
    trial_lease_until: float | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None

    @classmethod
    def from_row(cls, row: dict) -> HealthRecord:
        return cls(**{**row, "state": ProviderState(row["state"])})

    def takes_traffic_at(self, now: float) -> bool:
        """Could a request call this provider at ``now``? Only when healthy or degraded: a cooled provider waits
        for a probe to pass even after its cooldown is over (``now`` no longer matters; kept for callers)."""
        return self.state in (ProviderState.HEALTHY, ProviderState.DEGRADED)

    def probe_due_at(self, now: float) -> bool:
        """Is its cooldown over at ``now``, with no process holding the lease to probe it?"""
        return (
            self.state == ProviderState.COOLING_DOWN
            and (self.until or 0) <= now
            and (self.trial_lease_until is None or self.trial_lease_until <= now)
        )


class ProviderHealth:
    """Reads and moves the shared state of providers. Cheap enough to consult before every call."""

    def __init__(self, store: Store, reliability: Reliability, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.reliability = reliability
        self.clock = clock

    def get(self, provider: str) -> HealthRecord:
        rows = list(self.store.db.query("select * from provider_health where provider = ?", [provider]))
        return HealthRecord.from_row(rows[0]) if rows else HealthRecord(provider, ProviderState.HEALTHY)

    def snapshot(self, providers: list[str]) -> dict[str, HealthRecord]:
        return {provider: self.get(provider) for provider in providers}

    def admit(self, provider: str) -> Admission:
        """May a customer request call ``provider`` now? One read, no write: claiming a due probe is the caller's
        choice (``claim_probe``), since only a caller able to run the probe should hold its lease."""
        record = self.get(provider)
        now = self.clock()
        if record.takes_traffic_at(now):
            return Admission.NORMAL
        return Admission.PROBE_DUE if record.probe_due_at(now) else Admission.REFUSED

    def claim_probe(self, provider: str) -> bool:
        """Take the lease to probe a provider whose cooldown is over; False if it is not due or another holds it.

        The lease lasts ``trial_lease_s``, longer than one probe: a holder that dies frees it by expiry, and
        the probe's outcome clears it (success: healthy; failure: the next cooldown).
        """
        now = self.clock()
        # One statement, so two processes cannot both take the lease.
        claimed = self.store.db.execute(
            "update provider_health set trial_lease_until = ? where provider = ? and state = ? and until <= ?"
            " and (trial_lease_until is null or trial_lease_until <= ?)",
            [now + self.reliability.trial_lease_s, provider, ProviderState.COOLING_DOWN.value, now, now],
        ).rowcount
        self.store.db.conn.commit()
        return claimed == 1

    def record_success(self, provider: str, actor: str = "traffic") -> None:
        if self._is_plainly_healthy(provider):
            return  # the common case costs one read, no write: the success itself is in llm_calls
        with self.store.immediate():
            record = self.get(provider)
            now = self.clock()
            if record.state == ProviderState.DISABLED:
                self._write(record, last_success_at=now)
                return
            self._back_to_healthy(record, "answered", actor, last_success_at=now)

    def _is_plainly_healthy(self, provider: str) -> bool:
        record = self.get(provider)
        return record.state == ProviderState.HEALTHY and record.consecutive_failures == 0

    def record_failure(
        self,
        provider: str,
        classified: Classified,
        message: str,
        actor: str = "traffic",
        seen: HealthRecord | None = None,
    ) -> None:
        """Apply the policy of ``classified.kind`` to ``provider``.

        ``seen``: the provider's record when the failed attempt began. An attempt that began
        before the provider's cooldown did (one of the calls in flight when it went down) is counted but neither
        lengthens nor escalates that cooldown: only a failed probe, the one call made during a cooldown, says the
        provider is still down. Without this, the dozens of calls in flight when a provider failed doubled its
        cooldown each, and a 10 s outage kept it out for 2 minutes (tests/test_soak.py)."""
        blame = POLICIES[classified.kind].blame
        if blame is Blame.NOT_BLAMED:
            return
        reason = storable(f"{classified.kind.value}: {provider_message(message)}")[:REASON_MAX_CHARS]
        kind = classified.kind.value
        with self.store.immediate():
            record = self.get(provider)
            now = self.clock()
            failures = record.consecutive_failures + 1
            common = {"consecutive_failures": failures, "last_failure_at": now, "trial_lease_until": None}
            if record.state == ProviderState.DISABLED:
                self._write(record, **common)
            elif blame is Blame.BENCH:
                self._move(record, ProviderState.BENCHED, reason, kind, actor, until=None, **common)
            elif blame is Blame.COOL_FOR_RETRY_AFTER:
                # Capped: a provider asking for hours would otherwise stay out until an admin noticed.
                wait = min(
                    classified.retry_after_s or self.reliability.rate_limit_cooldown_s, self.reliability.cooldown_max_s
                )
                self._move(record, ProviderState.COOLING_DOWN, reason, kind, actor, until=now + wait, **common)
            elif record.state == ProviderState.BENCHED:
                self._write(record, **common)  # a failed probe of a benched provider keeps it benched
            elif record.state == ProviderState.COOLING_DOWN and _began_before_this_cooldown(seen, record):
                self._write(record, **common)  # in flight when the cooldown began: the cooldown stands as it is
            elif record.state == ProviderState.COOLING_DOWN or failures >= self.reliability.failures_before_cooldown:
                cooldown = min(
                    self.reliability.cooldown_base_s * 2**record.cooldown_level, self.reliability.cooldown_max_s
                )
                self._move(
                    record,
                    ProviderState.COOLING_DOWN,
                    reason,
                    kind,
                    actor,
                    until=now + cooldown,
                    cooldown_level=record.cooldown_level + 1,
                    **common,
                )
            else:
                self._move(record, ProviderState.DEGRADED, reason, kind, actor, until=None, **common)

    def reset(self, provider: str, actor: str) -> None:
        """Forget failures: the provider is healthy again for every worker (disabled ones stay disabled)."""
        with self.store.immediate():
            record = self.get(provider)
            if record.state == ProviderState.DISABLED:
                return
            self._back_to_healthy(record, "reset by admin", actor)

    def set_disabled(self, provider: str, disabled: bool, actor: str) -> None:
        with self.store.immediate():
            record = self.get(provider)
            if disabled:
                self._move(record, ProviderState.DISABLED, "disabled by admin", None, actor, until=None)
            elif record.state == ProviderState.DISABLED:
                self._back_to_healthy(record, "enabled by admin", actor)

    def _back_to_healthy(self, record: HealthRecord, reason: str, actor: str, **changes: object) -> None:
        """Healthy with a clean slate: no cooldown, no failure count, no probe lease held."""
        self._move(
            record, ProviderState.HEALTHY, reason, None, actor,
            until=None, consecutive_failures=0, cooldown_level=0, trial_lease_until=None, **changes,
        )  # fmt: skip

    def _move(
        self, record: HealthRecord, state: ProviderState, reason: str, kind: str | None, actor: str, **changes: object
    ) -> None:
        now = self.clock()
        changed = state != record.state
        self._write(
            record,
            state=state.value,
            reason=reason,
            error_kind=kind,
            since=now if changed or record.since is None else record.since,
            **changes,
        )
        if changed or (state == ProviderState.COOLING_DOWN):
            self.store.db["provider_events"].insert(
                {
                    "at": now,
                    "provider": record.provider,
                    "from_state": record.state.value,
                    "to_state": state.value,
                    "reason": reason,
                    "error_kind": kind,
                    "actor": actor,
                }
            )

    def _write(self, record: HealthRecord, **changes: object) -> None:
        row = {**record.__dict__, "state": record.state.value, **changes}
        self.store.db["provider_health"].upsert(row, pk="provider")


def _began_before_this_cooldown(seen: HealthRecord | None, now: HealthRecord) -> bool:
    """True when an attempt that saw ``seen`` at its start began before the cooldown ``now`` is in."""
    return seen is not None and not (seen.state == ProviderState.COOLING_DOWN and seen.since == now.since)
