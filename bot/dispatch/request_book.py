"""``RequestBook``: what staff read of service requests, newest first: a filtered, paginated list (each request
with its artisan), one request whole (fields, customer, the conversation, offers, every dispatch event, every
message sent about it), and the same list as CSV. Read-only: changes go through ``Dispatch``.

Times are Unix epoch seconds, as stored; the CSV writes them as ISO 8601 (UTC) for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.dispatch.directory import TRADES, trade_of
from bot.dispatch.errors import InvalidInput, NotFound
from bot.dispatch.quartiers import QuartierTable
from bot.store import Store

STATUSES = ("collecting", "awaiting_confirmation", "confirmed", "assigned", "in_progress", "done", "cancelled")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CSV_COLUMNS = (
    "id", "created_at", "status", "service_type", "quartier", "location", "description", "urgency", "language",
    "customer", "artisan_id", "artisan_name", "artisan_whatsapp", "confirmed_at", "assigned_at", "status_at",
    "dispatch_state",
)  # fmt: skip
_SELECT = """
    select s.*, d.state as dispatch_state, d.quartier as quartier, d.batch as dispatch_batch,
           d.deadline as dispatch_deadline, a.name as artisan_name, a.whatsapp as artisan_whatsapp,
           a.active as artisan_active
    from service_requests s
    left join request_dispatch d on d.request_id = s.id
    left join artisans a on a.id = s.artisan_id
"""


@dataclass(frozen=True)
class RequestFilter:
    """Validated filters of the list; build it with ``RequestBook.filter`` (which names a bad one)."""

    statuses: tuple[str, ...] = ()
    service_type: str | None = None
    quartier: str | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before


class RequestBook:
    def __init__(self, store: Store, quartiers: QuartierTable) -> None:
        self.store = store
        self.quartiers = quartiers

    def filter(
        self,
        status: str | None = None,
        service_type: str | None = None,
        quartier: str | None = None,
        since: float | str | None = None,
        until: float | str | None = None,
    ) -> RequestFilter:
        """Check the filters as given (a query string's text); ``InvalidInput`` names a bad one.

        ``status`` may list several, comma-separated; ``quartier`` is any spelling of a quartier of the table.
        """
        statuses: tuple[str, ...] = ()
        if status:
            statuses = tuple(part.strip() for part in status.split(",") if part.strip())
            unknown = [s for s in statuses if s not in STATUSES]
            if unknown:
                raise InvalidInput("status", f"unknown status {unknown[0][:40]!r}; expected {', '.join(STATUSES)}")
        trade = None
        if service_type:
            trade = trade_of(service_type)
            if trade is None:
                raise InvalidInput("service_type", f"expected one of {', '.join(TRADES)}, got {service_type[:40]!r}")
        canonical = None
        if quartier:
            canonical = self.quartiers.canonical(quartier) or self.quartiers.find(quartier)
            if canonical is None:
                raise InvalidInput("quartier", f"{quartier[:40]!r} is not a quartier of Douala we know")
        start, end = _epoch("since", since), _epoch("until", until)
        if start is not None and end is not None and end <= start:
            raise InvalidInput("until", "must be after since")
        return RequestFilter(statuses, trade, canonical, start, end)

    def page(
        self, filters: RequestFilter, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of requests, newest first, and the cursor of the next page (None on the last one)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
        before = None
        if cursor:
            if not cursor.isdigit() or len(cursor) > 18:
                raise InvalidInput("cursor", "give back the 'next' value of the previous page")
            before = int(cursor)
        rows = self._select(filters, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return [_summary(row) for row in rows], (str(rows[-1]["id"]) if more else None)

    def get(self, request_id: int) -> dict[str, Any]:
        """One request whole: its fields, customer and language, artisan, dispatch state, offers, every dispatch
        event, the customer's whole conversation, the messages sent about it and what staff were told."""
        db = self.store.db
        rows = list(db.query(f"{_SELECT} where s.id = ?", [request_id]))
        if not rows:
            raise NotFound(f"no request {request_id}")
        row = rows[0]
        detail = _summary(row)
        detail["media"] = row["media"]
        detail["latitude"], detail["longitude"] = row["latitude"], row["longitude"]
        detail["dispatch"] = (
            None
            if row["dispatch_state"] is None
            else {
                "state": row["dispatch_state"],
                "quartier": row["quartier"],
                "batch": row["dispatch_batch"],
                "deadline": row["dispatch_deadline"],
            }
        )
        detail["offers"] = list(
            db.query(
                "select o.id, o.artisan_id, a.name as artisan_name, a.whatsapp as artisan_whatsapp, o.batch, o.status,"
                " o.template, o.offered_at, o.answered_at, o.answer from dispatch_offers o"
                " join artisans a on a.id = o.artisan_id where o.request_id = ? order by o.id",
                [request_id],
            )
        )
        for offer in detail["offers"]:
            offer["template"] = bool(offer["template"])
        detail["events"] = list(
            db.query(
                "select id, at, kind, from_status, to_status, artisan_id, offer_id, batch, note, actor, inbound_id"
                " from dispatch_events where request_id = ? order by id",
                [request_id],
            )
        )
        detail["conversation"] = list(
            db.query(
                "select role, content, at, kind, inbound_id from conversation_messages where conversation_id = ?"
                " order by id",
                [row["conversation_id"]],
            )
        )
        detail["messages"] = list(
            db.query(
                "select id, to_number, kind, body, status, content_sid, error_code, error_reason, created_at, sent_at"
                " from outbound_messages where request_id = ? order by id",
                [request_id],
            )
        )
        detail["announcements"] = list(
            db.query(
                "select kind, text, at, webhook from staff_announcements where request_id = ? order by id", [request_id]
            )
        )
        return detail

    def csv(self, filters: RequestFilter) -> str:
        """Every request matching ``filters``, newest first, as CSV with a header row."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in self._all(filters):
            summary = _summary(row)
            artisan = summary["artisan"] or {}
            values = {
                **summary,
                "artisan_id": artisan.get("id"),
                "artisan_name": artisan.get("name"),
                "artisan_whatsapp": artisan.get("whatsapp"),
            }
            writer.writerow([_csv_cell(name, values.get(name)) for name in CSV_COLUMNS])
        return out.getvalue()

    def _all(self, filters: RequestFilter) -> Iterator[dict[str, Any]]:
        before = None
        while True:
            rows = self._select(filters, before, 500)
            yield from rows
            if len(rows) < 500:
                return
            before = rows[-1]["id"]

    def _select(self, filters: RequestFilter, before: int | None, limit: int) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        if filters.statuses:
            where.append(f"s.status in ({', '.join('?' for _ in filters.statuses)})")
            params.extend(filters.statuses)
        if filters.service_type:
            where.append("s.service_type = ?")
            params.append(filters.service_type)
        if filters.quartier:  # the quartier found when dispatch started: drafts have none yet
            where.append("d.quartier = ?")
            params.append(filters.quartier)
        if filters.since is not None:
            where.append("s.created_at >= ?")
            params.append(filters.since)
        if filters.until is not None:
            where.append("s.created_at < ?")
            params.append(filters.until)
        if before is not None:
            where.append("s.id < ?")
            params.append(before)
        # Newest first by id: ids grow with creation, and a cursor on a unique key never skips or repeats a row.
        sql = f"{_SELECT} where {' and '.join(where)} order by s.id desc limit ?"
        return list(self.store.db.query(sql, [*params, limit]))


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    artisan = None
    if row["artisan_id"] is not None:
        artisan = {
            "id": row["artisan_id"],
            "name": row["artisan_name"],
            "whatsapp": row["artisan_whatsapp"],
            "active": bool(row["artisan_active"]),
        }
    return {
        "id": row["id"],
        "status": row["status"],
        "service_type": row["service_type"],
        "quartier": row["quartier"],
        "location": row["location"],
        "description": row["description"],
        "urgency": row["urgency"],
        "language": row["language"],
        "customer": row["customer_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "confirmed_at": row["confirmed_at"],
        "assigned_at": row["assigned_at"],
        "status_at": row["status_at"],
        "dispatch_state": row["dispatch_state"],
        "artisan": artisan,
    }


def _epoch(name: str, value: float | str | None) -> float | None:
    """Epoch seconds from a number or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            raise InvalidInput(name, f"must be a finite number, got {text[:40]!r}")
        return number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(name, f"epoch seconds or an ISO 8601 date, got {text[:40]!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _csv_cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name.endswith("_at") and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    return value
