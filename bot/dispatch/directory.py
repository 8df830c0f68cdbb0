"""``ArtisanDirectory``: the artisans dispatch can offer requests to, their trades and the quartiers they serve.

An artisan is identified by their WhatsApp number (unique, stored as ``+2376...``): a message from it goes to
the dispatch handler instead of the customer conversation. Trades are the service types of requests
(``plomberie``, ``electricite``, ``electromenager``), written any common way; quartiers are canonical names of
``QuartierTable`` (an artisan with none serves the whole city). An artisan is paused, never deleted: offers and
assignments keep naming them.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.dispatch.errors import CsvImportRefused, DuplicateArtisan, InvalidInput, LineError, NotFound
from bot.dispatch.quartiers import QuartierTable, plain_words
from bot.store import Store

TRADES = ("plomberie", "electricite", "electromenager")
# How people write each trade (compared without accents or case).
TRADE_SPELLINGS = {
    "plomberie": TRADES[0], "plombier": TRADES[0], "plumbing": TRADES[0], "plumber": TRADES[0],
    "electricite": TRADES[1], "electricien": TRADES[1], "electrical": TRADES[1], "electrician": TRADES[1],
    "electricity": TRADES[1],
    "electromenager": TRADES[2], "appliance": TRADES[2], "appliances": TRADES[2], "appliance repair": TRADES[2],
    "reparation electromenager": TRADES[2], "frigoriste": TRADES[2],
}  # fmt: skip
# Quartier cells meaning "the whole city" (stored as no quartier at all).
WHOLE_CITY = frozenset({"*", "tout douala", "toute la ville", "all", "douala"})
NAME_MAX_CHARS = 80
_LIST_SEPARATORS = re.compile(r"[;,|/]")
_NUMBER_SEPARATORS = re.compile(r"[\s\-().]")
CSV_COLUMNS = {
    "name": "name", "nom": "name",
    "whatsapp": "whatsapp", "numero": "whatsapp", "telephone": "whatsapp", "phone": "whatsapp",
    "trades": "trades", "metiers": "trades", "metier": "trades", "trade": "trades",
    "quartiers": "quartiers", "quartier": "quartiers",
    "active": "active", "actif": "active",
}  # fmt: skip


@dataclass(frozen=True)
class Artisan:
    id: int
    name: str
    whatsapp: str
    trades: tuple[str, ...]
    quartiers: tuple[str, ...]  # empty: the whole city
    active: bool
    created_at: float
    updated_at: float
    paused_at: float | None
    last_offered_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "whatsapp": self.whatsapp,
            "trades": list(self.trades),
            "quartiers": list(self.quartiers),
            "active": self.active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "paused_at": self.paused_at,
            "last_offered_at": self.last_offered_at,
        }


def whatsapp_number(raw: object) -> str:
    """``+2376...`` for a phone number written any usual way (``699 00 00 01``, ``00237...``, ``whatsapp:+...``).

    A Cameroonian number without its country code (9 digits starting with 6 or 2) gets +237. Raises
    ``InvalidInput`` naming the field ``whatsapp`` for anything that is not a phone number.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("whatsapp", "a phone number is required, e.g. +237699000001")
    value = raw.strip()
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    value = _NUMBER_SEPARATORS.sub("", value)
    if value.startswith("00"):
        value = "+" + value[2:]
    digits = value[1:] if value.startswith("+") else value
    if not digits.isdigit():
        raise InvalidInput("whatsapp", f"{raw.strip()[:40]!r} is not a phone number")
    if not value.startswith("+"):
        if len(digits) == 9 and digits[0] in "62":
            digits = "237" + digits
        elif not (digits.startswith("237") and len(digits) == 12):
            raise InvalidInput("whatsapp", f"{raw.strip()[:40]!r}: give the number with its country code (+237...)")
    if not 8 <= len(digits) <= 15:
        raise InvalidInput("whatsapp", f"{raw.strip()[:40]!r} is not a phone number (8 to 15 digits)")
    return "+" + digits


def trade_of(raw: str) -> str | None:
    """The canonical trade ``raw`` names (``"Plombier"`` -> ``plomberie``), or None."""
    return TRADE_SPELLINGS.get(" ".join(plain_words(raw)))


class ArtisanDirectory:
    def __init__(self, store: Store, quartiers: QuartierTable, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.quartiers = quartiers
        self.clock = clock

    # --- reading ------------------------------------------------------------------------------------------

    def get(self, artisan_id: int) -> Artisan:
        found = self._load("a.id = ?", [artisan_id])
        if not found:
            raise NotFound(f"no artisan {artisan_id}")
        return found[0]

    def find_by_number(self, number: str) -> Artisan | None:
        """The artisan (active or paused) whose WhatsApp number this is; None for everybody else."""
        try:
            normalised = whatsapp_number(number)
        except InvalidInput:
            return None
        found = self._load("a.whatsapp = ?", [normalised])
        return found[0] if found else None

    def list(self, active: bool | None = None, trade: str | None = None, quartier: str | None = None) -> list[Artisan]:
        """Artisans by name; ``quartier`` keeps those serving it (including whole-city artisans)."""
        where, params = ["1 = 1"], []
        if active is not None:
            where.append("a.active = ?")
            params.append(int(active))
        if trade is not None:
            where.append("exists (select 1 from artisan_trades t where t.artisan_id = a.id and t.trade = ?)")
            params.append(self._trades([trade])[0])
        if quartier is not None:
            where.append(
                "(exists (select 1 from artisan_quartiers q where q.artisan_id = a.id and q.quartier = ?)"
                " or not exists (select 1 from artisan_quartiers q where q.artisan_id = a.id))"
            )
            params.append(self._quartiers([quartier])[0])
        return self._load(" and ".join(where), params)

    # --- writing ------------------------------------------------------------------------------------------

    def create(
        self, name: object, whatsapp: object, trades: object, quartiers: object = (), active: object = True
    ) -> Artisan:
        """Add an artisan; ``InvalidInput`` names a bad field, ``DuplicateArtisan`` a number already listed."""
        values = self._clean(name=name, whatsapp=whatsapp, trades=trades, quartiers=quartiers, active=active)
        with self.store.immediate() as db:
            artisan_id = self._insert(db, values)
        return self.get(artisan_id)

    def update(self, artisan_id: int, changes: dict[str, object]) -> Artisan:
        """Change any of name, whatsapp, trades, quartiers, active; the others are kept."""
        unknown = sorted(set(changes) - {"name", "whatsapp", "trades", "quartiers", "active"})
        if unknown:
            raise InvalidInput(unknown[0], "unknown field; allowed: name, whatsapp, trades, quartiers, active")
        values = self._clean(**changes)
        with self.store.immediate() as db:
            row = db.execute("select active from artisans where id = ?", [artisan_id]).fetchone()
            if row is None:
                raise NotFound(f"no artisan {artisan_id}")
            now = self.clock()
            if "whatsapp" in values:
                self._refuse_duplicate(db, values["whatsapp"], artisan_id)
            columns = {name: values[name] for name in ("name", "whatsapp") if name in values}
            if "active" in values:
                columns["active"] = int(values["active"])
                if bool(row[0]) != values["active"]:
                    columns["paused_at"] = None if values["active"] else now
            columns["updated_at"] = now
            db["artisans"].update(artisan_id, columns)
            if "trades" in values:
                db.execute("delete from artisan_trades where artisan_id = ?", [artisan_id])
                db["artisan_trades"].insert_all({"artisan_id": artisan_id, "trade": t} for t in values["trades"])
            if "quartiers" in values:
                db.execute("delete from artisan_quartiers where artisan_id = ?", [artisan_id])
                db["artisan_quartiers"].insert_all(
                    {"artisan_id": artisan_id, "quartier": q} for q in values["quartiers"]
                )
        return self.get(artisan_id)

    def pause(self, artisan_id: int) -> Artisan:
        """No more offers for this artisan; everything they did stays (``update(..., {"active": True})`` resumes)."""
        return self.update(artisan_id, {"active": False})

    def import_csv(self, text: str) -> list[Artisan]:
        """Add every artisan of a CSV (columns name, whatsapp, trades, quartiers, optional active; list cells
        separated by ``;`` or ``,``), all or nothing: ``CsvImportRefused`` lists every bad line."""
        reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
        header = next(reader, None)
        if not header:
            raise CsvImportRefused(
                [LineError(1, "the file is empty; expected a header: name,whatsapp,trades,quartiers")]
            )
        columns = [CSV_COLUMNS.get(" ".join(plain_words(cell))) for cell in header]
        missing = [name for name in ("name", "whatsapp", "trades") if name not in columns]
        if missing:
            reason = f"the header lacks {', '.join(missing)} (expected name,whatsapp,trades,quartiers[,active])"
            raise CsvImportRefused([LineError(1, reason)])
        rows: list[tuple[int, dict[str, object]]] = []
        errors: list[LineError] = []
        seen: dict[str, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            fields = {name: cell for name, cell in zip(columns, cells, strict=False) if name}
            fields.setdefault("quartiers", "")
            try:
                values = self._clean(**fields)
            except InvalidInput as exc:
                errors.append(LineError(line, str(exc)))
                continue
            number = str(values["whatsapp"])
            if number in seen:
                errors.append(LineError(line, f"whatsapp: {number} is already on line {seen[number]}"))
                continue
            seen[number] = line
            rows.append((line, values))
        created: list[int] = []
        with self.store.immediate() as db:
            for line, values in rows:
                try:
                    self._refuse_duplicate(db, str(values["whatsapp"]))
                except DuplicateArtisan as exc:
                    errors.append(LineError(line, str(exc)))
            if errors:
                errors.sort(key=lambda e: e.line)
                raise CsvImportRefused(errors)
            created = [self._insert(db, values) for _, values in rows]
        return [self.get(artisan_id) for artisan_id in created]

    def mark_offered(self, db: sqlite_utils.Database, artisan_id: int, at: float) -> None:
        """Inside the caller's transaction: this artisan was just offered a request (goes to the back of the line)."""
        db.execute("update artisans set last_offered_at = ? where id = ?", [at, artisan_id])

    # --- internals ----------------------------------------------------------------------------------------

    def _insert(self, db: sqlite_utils.Database, values: dict[str, Any]) -> int:
        self._refuse_duplicate(db, values["whatsapp"])
        now = self.clock()
        try:
            cursor = db.execute(
                "insert into artisans (name, whatsapp, active, created_at, updated_at, paused_at)"
                " values (?, ?, ?, ?, ?, ?)",
                [values["name"], values["whatsapp"], int(values.get("active", True)), now, now,
                 None if values.get("active", True) else now],
            )  # fmt: skip
        except sqlite3.IntegrityError:  # the unique index's backstop
            raise DuplicateArtisan(values["whatsapp"], 0) from None
        artisan_id = int(cursor.lastrowid)
        db["artisan_trades"].insert_all({"artisan_id": artisan_id, "trade": t} for t in values["trades"])
        db["artisan_quartiers"].insert_all({"artisan_id": artisan_id, "quartier": q} for q in values["quartiers"])
        return artisan_id

    @staticmethod
    def _refuse_duplicate(db: sqlite_utils.Database, number: str, except_id: int | None = None) -> None:
        row = db.execute("select id from artisans where whatsapp = ? and id != ?", [number, except_id or -1]).fetchone()
        if row is not None:
            raise DuplicateArtisan(number, row[0])

    def _clean(self, **fields: object) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in fields:
            name = fields["name"]
            if not isinstance(name, str) or not name.strip():
                raise InvalidInput("name", "a name is required")
            if len(name) > NAME_MAX_CHARS:
                raise InvalidInput("name", f"at most {NAME_MAX_CHARS} characters")
            values["name"] = " ".join(name.split())
        if "whatsapp" in fields:
            values["whatsapp"] = whatsapp_number(fields["whatsapp"])
        if "trades" in fields:
            values["trades"] = self._trades(_as_list("trades", fields["trades"]))
            if not values["trades"]:
                raise InvalidInput("trades", f"at least one of {', '.join(TRADES)}")
        if "quartiers" in fields:
            values["quartiers"] = self._quartiers(_as_list("quartiers", fields["quartiers"]))
        if "active" in fields:
            values["active"] = _as_bool(fields["active"])
        return values

    def _trades(self, raw: Iterable[str]) -> list[str]:
        trades: list[str] = []
        for item in raw:
            trade = trade_of(item)
            if trade is None:
                raise InvalidInput("trades", f"unknown trade {item[:40]!r}; expected {', '.join(TRADES)}")
            if trade not in trades:
                trades.append(trade)
        return trades

    def _quartiers(self, raw: Iterable[str]) -> list[str]:
        items = list(raw)
        if any(" ".join(plain_words(item)) in WHOLE_CITY or item.strip() == "*" for item in items):
            return []  # the whole city
        quartiers: list[str] = []
        for item in items:
            quartier = self.quartiers.canonical(item) or self.quartiers.find(item)
            if quartier is None:
                raise InvalidInput(
                    "quartiers", f"unknown quartier {item[:40]!r} (known: {', '.join(self.quartiers.names[:8])}, ...)"
                )
            if quartier not in quartiers:
                quartiers.append(quartier)
        return quartiers

    def _load(self, where: str, params: list[Any]) -> list[Artisan]:
        rows = list(self.store.db.query(f"select * from artisans a where {where} order by a.name, a.id", params))
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        marks = ", ".join("?" for _ in ids)
        trades: dict[int, list[str]] = {}
        for artisan_id, trade in self.store.db.execute(
            f"select artisan_id, trade from artisan_trades where artisan_id in ({marks}) order by rowid", ids
        ):
            trades.setdefault(artisan_id, []).append(trade)
        quartiers: dict[int, list[str]] = {}
        for artisan_id, quartier in self.store.db.execute(
            f"select artisan_id, quartier from artisan_quartiers where artisan_id in ({marks}) order by rowid", ids
        ):
            quartiers.setdefault(artisan_id, []).append(quartier)
        return [
            Artisan(
                id=row["id"],
                name=row["name"],
                whatsapp=row["whatsapp"],
                trades=tuple(trades.get(row["id"], [])),
                quartiers=tuple(quartiers.get(row["id"], [])),
                active=bool(row["active"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                paused_at=row["paused_at"],
                last_offered_at=row["last_offered_at"],
            )
            for row in rows
        ]


def _as_list(field: str, value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in _LIST_SEPARATORS.split(value) if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise InvalidInput(field, "a list of strings (or one string separated by ';')")


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("", "1", "true", "yes", "oui", "active", "actif"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "non", "paused", "pause"):
        return False
    raise InvalidInput("active", "true or false")
