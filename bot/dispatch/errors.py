"""What the dispatch domain refuses, as a tree (the web layer maps each to one HTTP status)::

DispatchError
├── NotFound                 404  no such request or artisan
├── InvalidInput             400  a field is missing or malformed (names the field)
│   └── CsvImportRefused          an artisan CSV with bad lines: every line's reason, nothing imported
└── Conflict                 409  the store says no
    ├── DuplicateArtisan          that WhatsApp number is already in the directory (names who has it)
    └── IllegalTransition         a status change the request's current status does not allow (says why)
"""

from __future__ import annotations

from dataclasses import dataclass


class DispatchError(Exception):
    """Base of every refusal of the dispatch domain; ``str()`` is the reason shown to the caller."""


class NotFound(DispatchError):
    """Raised when a request or artisan id names nothing (an API answers 404)."""


class InvalidInput(DispatchError):
    """Raised when a field is missing or malformed; ``field`` names it (an API answers 400)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line of the file, the header being line 1
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class CsvImportRefused(InvalidInput):
    """Raised by an artisan CSV import that found bad lines: nothing is imported, ``errors`` lists every bad line
    with its number and reason, so the file can be fixed in one go and imported again."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__("csv", f"{len(errors)} bad line(s), nothing imported: " + "; ".join(map(str, errors)))
        self.errors = errors


class Conflict(DispatchError):
    """Raised when the request is well-formed but the current state refuses it (an API answers 409)."""


class DuplicateArtisan(Conflict):
    """Raised when a WhatsApp number is already in the directory; ``artisan_id`` is who has it."""

    def __init__(self, number: str, artisan_id: int) -> None:
        super().__init__(f"whatsapp: {number} is already in the directory (artisan {artisan_id})")
        self.number = number
        self.artisan_id = artisan_id


class IllegalTransition(Conflict):
    """Raised when a request cannot move from its status to the one asked, with the reason (an API answers 409,
    e.g. ``request 12 is done: a finished request cannot become in_progress``)."""

    def __init__(self, request_id: int, current: str, target: str, reason: str) -> None:
        super().__init__(f"request {request_id} is {current}: {reason}")
        self.request_id = request_id
        self.current = current
        self.target = target
        self.reason = reason
