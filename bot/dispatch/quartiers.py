"""``QuartierTable``: a location as customers write it ("Carrefour Ndokoti", "derrière total bepanda") to the
canonical quartier of Douala it is in, from ``quartiers.yaml`` (data, not code).

Matching ignores accents, case and punctuation; a spelling written as one word or two ("newbell", "new bell",
"pk8", "PK 8") matches either way. The longest name found in a location wins, so "Akwa Nord" beats "Akwa".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_PATH = Path(__file__).with_name("quartiers.yaml")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


class QuartierTableError(ValueError):
    """``quartiers.yaml`` (or the file given instead) is unreadable or malformed, or one spelling names two
    quartiers. Raised when the table is loaded, at start-up; the message names the file and the entry."""


def plain_words(text: str) -> tuple[str, ...]:
    """Lower-case ASCII words of ``text``: "Deïdo, Rond-Point" -> ("deido", "rond", "point")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return tuple(word for word in _NOT_WORD.split(ascii_text) if word)


@dataclass(frozen=True)
class _Spelling:
    words: tuple[str, ...]
    quartier: str

    @property
    def weight(self) -> int:
        return len("".join(self.words))


class QuartierTable:
    def __init__(self, quartiers: dict[str, list[str]], source: str = "quartiers") -> None:
        self.names: tuple[str, ...] = tuple(quartiers)
        self._by_key: dict[tuple[str, ...], str] = {}
        self._spellings: list[_Spelling] = []
        for name, spellings in quartiers.items():
            for spelling in (name, *spellings):
                words = plain_words(spelling)
                if not words:
                    raise QuartierTableError(f"{source}: {name}: the spelling {spelling!r} has no letters or digits")
                for variant in {words, ("".join(words),)}:
                    owner = self._by_key.setdefault(variant, name)
                    if owner != name:
                        raise QuartierTableError(
                            f"{source}: {spelling!r} names both {owner!r} and {name!r}; keep it under one"
                        )
                    self._spellings.append(_Spelling(variant, name))
        # Longest first: the first spelling found wins.
        self._spellings.sort(key=lambda s: (-s.weight, -len(s.words)))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> QuartierTable:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise QuartierTableError(f"{path}: cannot read the quartier table: {exc}") from exc
        table = data.get("quartiers") if isinstance(data, dict) else None
        if not isinstance(table, dict) or not table:
            raise QuartierTableError(f"{path}: quartiers: must be a mapping of quartier -> list of spellings")
        quartiers: dict[str, list[str]] = {}
        for name, spellings in table.items():
            if not isinstance(name, str) or not name.strip():
                raise QuartierTableError(f"{path}: quartiers: {name!r} is not a quartier name")
            spellings = spellings or []
            if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
                raise QuartierTableError(f"{path}: quartiers.{name}: must be a list of spellings")
            quartiers[name.strip()] = [s.strip() for s in spellings]
        return cls(quartiers, source=str(path))

    def find(self, location: str | None) -> str | None:
        """The canonical quartier a free-text location names, or None when it names none of the table."""
        if not location:
            return None
        words = plain_words(location)
        if not words:
            return None
        best: tuple[int, int, str] | None = None  # (-weight, position, quartier)
        for spelling in self._spellings:
            position = _position(words, spelling.words)
            if position is None:
                continue
            candidate = (-spelling.weight, position, spelling.quartier)
            if best is None or candidate < best:
                best = candidate
        return best[2] if best else None

    def canonical(self, name: str) -> str | None:
        """The quartier ``name`` designates exactly (a directory entry), by its name or a spelling; else None."""
        words = plain_words(name)
        if not words:
            return None
        return self._by_key.get(words) or self._by_key.get(("".join(words),))


def _position(words: tuple[str, ...], spelling: tuple[str, ...]) -> int | None:
    """Index of the first occurrence of ``spelling`` as consecutive whole words of ``words``, else None."""
    size = len(spelling)
    for start in range(len(words) - size + 1):
        if words[start : start + size] == spelling:
            return start
    return None
