"""Alerts on provider state transitions, derived from ``provider_events`` and sent once each.

Four kinds, each raised only when the state actually changes:

    benched        a provider stopped getting traffic until someone acts (credits, key)
    recovered      a benched provider answers again
    all_down       no configured provider can take a request (benched, cooling down or disabled)
    all_recovered  after all_down, some provider can take requests again

De-duplication lives in SQLite, so several processes never double-send: a cursor over event ids is
advanced in the same write transaction that inserts the alerts (each with a unique dedupe key), and
each alert is delivered under a short claim, remembering which sinks already got it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from bot.admin.alert_sinks import Alert, AlertSinks
from bot.llm.error_kinds import POLICIES, ErrorKind
from bot.llm.health import ProviderState
from bot.store import Store

log = logging.getLogger(__name__)

CURSOR = "alerts"
EVENT_BATCH = 500
DELIVERY_CLAIM_S = 60.0
MAX_DELIVERY_ATTEMPTS = 5
RETRY_BACKOFF_S = 30.0

# Where an admin acts on a benched provider, by LiteLLM provider family.
CONSOLES: dict[str, tuple[str, str, str]] = {
    "anthropic": (
        "Anthropic",
        "https://console.anthropic.com/settings/billing",
        "https://console.anthropic.com/settings/keys",
    ),
    "openai": (
        "OpenAI",
        "https://platform.openai.com/settings/organization/billing",
        "https://platform.openai.com/api-keys",
    ),
    "gemini": ("Google Gemini", "https://aistudio.google.com/usage", "https://aistudio.google.com/apikey"),
}


def advice_for(family: str | None, error_kind: str | None) -> str | None:
    """What the admin should do, naming the provider's console when we know it."""
    label, billing, keys = CONSOLES.get(family or "", (family or "the provider", None, None))
    if error_kind == ErrorKind.CREDIT_EXHAUSTED and billing:
        return f"{label} credits exhausted: top up at {billing}, then run a test (dashboard or POST /api/llm/test)."
    if error_kind == ErrorKind.AUTH_FAILED and keys:
        return f"{label} refused the API key: check or rotate it at {keys}, then run a test."
    try:
        return POLICIES[ErrorKind(error_kind or "")].advice
    except ValueError:
        return None


class AlertDispatcher:
    """Turns new provider events into alerts, then delivers pending alerts to the sinks."""

    def __init__(
        self,
        store: Store,
        providers: Sequence[str],
        families: dict[str, str],
        sinks: AlertSinks,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.providers = list(providers)
        self.families = families
        self.sinks = sinks
        self.clock = clock

    def run_once(self) -> int:
        """Derive alerts from new events, then deliver what is pending; returns alerts delivered."""
        while self.derive() == EVENT_BATCH:
            pass
        return self.deliver_pending()

    def derive(self) -> int:
        """Read events after the cursor, insert their alerts and move the cursor, in one transaction."""
        with self.store.immediate() as db:
            cursor = next(iter(db.query("select last_event_id from admin_alert_cursor where name = ?", [CURSOR])))
            last_id = cursor["last_event_id"]
            states = self._states_at(last_id)
            events = list(
                db.query("select * from provider_events where id > ? order by id limit ?", [last_id, EVENT_BATCH])
            )
            for event in events:
                for alert in self._alerts_for(event, states):
                    db.execute(
                        "insert or ignore into admin_alerts (dedupe_key, at, kind, provider, message, advice, event_id,"
                        " delivery, attempts) values (?, ?, ?, ?, ?, ?, ?, 'pending', 0)",
                        [
                            f"{alert['kind']}:{alert['provider'] or '*'}:{event['id']}",
                            event["at"],
                            alert["kind"],
                            alert["provider"],
                            alert["message"],
                            alert["advice"],
                            event["id"],
                        ],
                    )
                last_id = event["id"]
            db.execute("update admin_alert_cursor set last_event_id = ? where name = ?", [last_id, CURSOR])
        return len(events)

    def _states_at(self, event_id: int) -> dict[str, str]:
        """Each configured provider's state right after event ``event_id`` (healthy if it never moved)."""
        rows = self.store.db.query(
            "select provider, to_state from provider_events where id in"
            " (select max(id) from provider_events where id <= ? group by provider)",
            [event_id],
        )
        states = dict.fromkeys(self.providers, ProviderState.HEALTHY.value)
        states.update({row["provider"]: row["to_state"] for row in rows if row["provider"] in states})
        return states

    def _alerts_for(self, event: dict, states: dict[str, str]) -> list[dict]:
        provider, before, after = event["provider"], event["from_state"], event["to_state"]
        was_all_down = _all_down(states)
        if provider in states:
            states[provider] = after
        alerts = []
        benched = ProviderState.BENCHED.value
        if after == benched and before != benched:
            alerts.append(
                {
                    "kind": "benched",
                    "provider": provider,
                    "message": f"{provider} benched, it gets no traffic: {event['reason']}",
                    "advice": advice_for(self.families.get(provider), event["error_kind"]),
                }
            )
        if before == benched and after in (ProviderState.HEALTHY.value, ProviderState.DEGRADED.value):
            alerts.append(
                {
                    "kind": "recovered",
                    "provider": provider,
                    "message": f"{provider} recovered: it answers again ({event['actor']}).",
                    "advice": None,
                }
            )
        is_all_down = _all_down(states)
        if is_all_down and not was_all_down:
            detail = ", ".join(f"{name} {state}" for name, state in states.items())
            alerts.append(
                {
                    "kind": "all_down",
                    "provider": None,
                    "message": f"All LLM providers are down ({detail}): customers get the fallback reply.",
                    "advice": "See each provider's reason on /admin; top up, fix keys or re-enable a provider.",
                }
            )
        elif was_all_down and not is_all_down:
            alerts.append(
                {
                    "kind": "all_recovered",
                    "provider": provider,
                    "message": f"LLM service restored: {provider} takes requests again.",
                    "advice": None,
                }
            )
        return alerts

    def deliver_pending(self) -> int:
        delivered = 0
        now = self.clock()
        pending = list(
            self.store.db.query(
                "select * from admin_alerts where delivery = 'pending'"
                " and (claimed_until is null or claimed_until <= ?) order by id limit 50",
                [now],
            )
        )
        for row in pending:
            if not self._claim(row["id"]):
                continue  # another process is delivering it
            alert = Alert(
                row["id"], row["kind"], row["provider"], row["message"], row["advice"], row["at"], row["event_id"]
            )
            done, errors = self.sinks.deliver(alert, [s for s in (row["sinks_done"] or "").split(",") if s])
            attempts = (row["attempts"] or 0) + 1
            if not errors:
                state, retry_at = "delivered", None
                delivered += 1
            elif attempts >= MAX_DELIVERY_ATTEMPTS:
                state, retry_at = "failed", None
                log.error("alert %s could not be delivered after %s attempts: %s", row["id"], attempts, errors)
            else:
                state, retry_at = "pending", self.clock() + RETRY_BACKOFF_S * attempts
            self.store.db.execute(
                "update admin_alerts set delivery = ?, attempts = ?, claimed_until = ?, sinks_done = ?,"
                " delivered_at = ?, last_error = ? where id = ?",
                [
                    state,
                    attempts,
                    retry_at,
                    ",".join(sorted(done)),
                    self.clock() if state == "delivered" else None,
                    "; ".join(errors) or None,
                    row["id"],
                ],
            )
            self.store.db.conn.commit()
        return delivered

    def _claim(self, alert_id: int) -> bool:
        now = self.clock()
        claimed = self.store.db.execute(
            "update admin_alerts set claimed_until = ? where id = ? and delivery = 'pending'"
            " and (claimed_until is null or claimed_until <= ?)",
            [now + DELIVERY_CLAIM_S, alert_id, now],
        ).rowcount
        self.store.db.conn.commit()
        return claimed == 1

    def recent(self, limit: int = 50) -> list[dict]:
        return list(self.store.db.query("select * from admin_alerts order by id desc limit ?", [limit]))


# States in which a provider gets no traffic, as ``provider_events`` names them.
_DOWN_STATES = frozenset({ProviderState.BENCHED.value, ProviderState.COOLING_DOWN.value, ProviderState.DISABLED.value})


def _all_down(states: dict[str, str]) -> bool:
    return bool(states) and all(state in _DOWN_STATES for state in states.values())
