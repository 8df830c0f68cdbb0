"""The schema, grown by named migrations applied once each and recorded in ``_sqlite_migrations``.

Read top to bottom, this is the history of the schema. Never edit a migration that has shipped: add
a new one. Times are Unix epoch seconds (REAL) so that comparisons and buckets are plain arithmetic.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("djobea")


@MIGRATIONS()
def m001_llm_calls(db: Database) -> None:
    """Every attempt at a provider: the ledger behind analytics, costs and the admin status."""
    db["llm_calls"].create(
        {
            "id": str,  # attempt id, chosen by LLMService before the call
            "request_id": str,  # shared by the attempts of one LLMService.complete()
            "started_at": float,
            "purpose": str,  # chat, suggestions, selftest, ...
            "provider": str,  # deployment name in router_config, e.g. "claude"
            "model": str,
            "deployment_id": str,
            "outcome": str,  # success | failure
            "error_kind": str,
            "http_status": int,
            "latency_ms": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "fallback_depth": int,  # 0 = first provider tried
            "retry_index": int,  # 0 = first call to this provider in this request
            "error_message": str,  # scrubbed of keys, truncated
            "recorded_by": str,  # litellm_callback | llm_service (when LiteLLM dropped the callback)
        },
        pk="id",
    )
    db["llm_calls"].create_index(["started_at"])
    db["llm_calls"].create_index(["provider", "started_at"])
    db["llm_calls"].create_index(["request_id"])


@MIGRATIONS()
def m002_provider_health(db: Database) -> None:
    """One row per provider: the state every worker reads before calling it."""
    db["provider_health"].create(
        {
            "provider": str,
            "state": str,  # healthy | degraded | cooling_down | benched | disabled
            "reason": str,
            "error_kind": str,
            "since": float,
            "until": float,  # end of a cooldown; NULL otherwise
            "consecutive_failures": int,
            "cooldown_level": int,  # grows the next cooldown while failures repeat
            "trial_lease_until": float,  # a worker holding this tests a provider whose cooldown ended
            "last_success_at": float,
            "last_failure_at": float,
        },
        pk="provider",
        not_null={"state"},
        defaults={"consecutive_failures": 0, "cooldown_level": 0},
    )


@MIGRATIONS()
def m003_provider_events(db: Database) -> None:
    """State changes of providers (from, to, why, who): the audit trail and the source of alerts."""
    db["provider_events"].create(
        {
            "id": int,
            "at": float,
            "provider": str,
            "from_state": str,
            "to_state": str,
            "reason": str,
            "error_kind": str,
            "actor": str,  # traffic, probe, admin:<name>
        },
        pk="id",
    )
    db["provider_events"].create_index(["provider", "at"])


# == WhatsApp conversation (m1xx) =========================================================================
# (migrations of the conversation area are appended here, named m101_..., m102_...)


# == Admin side (m2xx) =====================================================================================
# (migrations of the admin area are appended here, named m201_..., m202_...)


@MIGRATIONS()
def m201_scheduler_runs(db: Database) -> None:
    """One row per scheduled job: its last run, claimed in a transaction so two schedulers never both run it."""
    db["scheduler_runs"].create(
        {
            "job": str,
            "last_started_at": float,
            "last_finished_at": float,
            "holder": str,  # host:pid of the scheduler that ran it
            "last_error": str,
            "runs": int,
        },
        pk="job",
        defaults={"runs": 0},
    )


@MIGRATIONS()
def m202_admin_alerts(db: Database) -> None:
    """Alerts derived from provider_events: a cursor over event ids, and each alert with its delivery state."""
    db["admin_alert_cursor"].create({"name": str, "last_event_id": int}, pk="name")
    db["admin_alerts"].create(
        {
            "id": int,
            "dedupe_key": str,  # kind:provider:event id; unique, so an alert is never created twice
            "at": float,
            "kind": str,  # benched | recovered | all_down | all_recovered
            "provider": str,
            "message": str,
            "advice": str,
            "event_id": int,
            "delivery": str,  # pending | delivered | failed
            "attempts": int,
            "claimed_until": float,  # a process delivering it holds this lease
            "delivered_at": float,
            "sinks_done": str,  # comma-separated sinks already sent to, so a retry never repeats them
            "last_error": str,
        },
        pk="id",
        not_null={"dedupe_key", "delivery"},
        defaults={"attempts": 0, "delivery": "pending"},
    )
    db["admin_alerts"].create_index(["dedupe_key"], unique=True)
    db["admin_alerts"].create_index(["delivery"])
    db["admin_alerts"].create_index(["at"])
    # Events already in the store when the admin side is installed are history, not news: start after them.
    last = db.execute("select coalesce(max(id), 0) from provider_events").fetchone()[0]
    db["admin_alert_cursor"].insert({"name": "alerts", "last_event_id": last})


@MIGRATIONS()
def m203_llm_call_totals(db: Database) -> None:
    """Running totals of llm_calls rolled up below a watermark, so /metrics counters stay monotonic after
    retention deletes old rows and a scrape only reads the recent tail of llm_calls."""
    db["llm_call_totals"].create(
        {
            "provider": str,
            "purpose": str,
            "outcome": str,
            "error_kind": str,  # '' for successes (NULL cannot be part of a primary key lookup)
            "attempts": int,
            "latency_ms_sum": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
        },
        pk=("provider", "purpose", "outcome", "error_kind"),
    )
    db["llm_latency_totals"].create(
        {"provider": str, "outcome": str, "le": str, "attempts": int},  # le: bucket upper bound in seconds
        pk=("provider", "outcome", "le"),
    )
    db["llm_rollup"].create({"name": str, "watermark": float}, pk="name")


@MIGRATIONS()
def m204_llm_calls_purpose_index(db: Database) -> None:
    """Probe cost per day filters on purpose = 'selftest' over a time range."""
    db["llm_calls"].create_index(["purpose", "started_at"])
