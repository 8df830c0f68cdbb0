"""Retention: rows older than ``RETENTION_DAYS`` are deleted, after their counts were rolled up.

``llm_calls`` is folded into the running totals first (so /metrics counters never go down); each
provider's latest event is kept whatever its age, since it still says what state the provider is in. A web-chat
session unused for the retention period is forgotten: its token stops working and the visitor starts anew. The
media of messages older than the retention go too: their ``inbound_media`` rows, then every stored file no row
names any more (``MediaLibrary.delete_before``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.admin.call_rollup import roll_up
from bot.media.library import MediaLibrary
from bot.store import Store

DAY_S = 86400.0


def delete_old_rows(store: Store, retention_days: float, clock: Callable[[], float] = time.time) -> dict[str, int]:
    """Delete what is older than the retention; returns the rows deleted per table."""
    cutoff = clock() - retention_days * DAY_S
    watermark = roll_up(store, clock)
    with store.immediate() as db:
        deleted = {
            "llm_calls": db.execute("delete from llm_calls where started_at < ?", [min(cutoff, watermark)]).rowcount,
            "provider_events": db.execute(
                "delete from provider_events where at < ?"
                " and id not in (select max(id) from provider_events group by provider)"
                " and id <= (select last_event_id from admin_alert_cursor where name = 'alerts')",
                [cutoff],
            ).rowcount,
            "admin_alerts": db.execute(
                "delete from admin_alerts where at < ? and delivery != 'pending'", [cutoff]
            ).rowcount,
            "chat_sessions": db.execute(
                "delete from chat_sessions where coalesce(last_seen_at, created_at) < ?", [cutoff]
            ).rowcount,
        }
    deleted.update(MediaLibrary(store, clock=clock).delete_before(cutoff))
    return deleted
