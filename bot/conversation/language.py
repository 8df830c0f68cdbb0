"""Which language a customer writes in: French, English or Cameroonian Pidgin (``fr``, ``en``, ``pcm``).

The model is told this guess and reports its own; the guess alone is used when no model answers
(the holding reply must still be in the customer's language). Keyword scores, because short
WhatsApp messages ("light don go", "coule-coule") defeat statistical detectors.
"""

from __future__ import annotations

import re

LANGUAGES = ("fr", "en", "pcm")

# fmt: off
_MARKERS: dict[str, tuple[str, ...]] = {
    "pcm": (
        "don", "dey", "di", "abeg", "wetin", "una", "sef", "wahala", "comot", "oga", "na", "no fit", "make i",
        "how far", "i wan", "e don", "light don go", "small small", "quick quick", "sabi", "chop", "pikin",
        "massa", "ma broda", "for my", "don spoil",
    ),
    "fr": (
        "bonjour", "bonsoir", "salut", "je", "j'ai", "mon", "ma", "mes", "est", "pas", "une", "un", "de", "du",
        "des", "le", "la", "les", "il", "y", "a", "merci", "oui", "non", "svp", "s'il", "vous", "plait", "plaît",
        "fuite", "courant", "coule", "quartier", "urgent", "besoin", "chez", "moi", "avec", "pour", "panne",
        "frigo", "d'accord", "ne", "plus", "aujourd'hui", "demain", "c'est", "suis",
    ),
    "en": (
        "hello", "hi", "good", "morning", "the", "my", "is", "not", "please", "thanks", "thank", "yes", "no", "i",
        "i'm", "have", "need", "water", "leak", "power", "fridge", "broken", "working", "can", "you", "send",
        "today", "tomorrow", "near", "it", "a", "an", "and", "of", "in", "at", "to",
    ),
}
# fmt: on
_WORD = re.compile(r"[\w'’]+", re.UNICODE)


SWITCH_MARGIN = 2.0  # how much more another language must score before a conversation changes language


def language_scores(text: str) -> dict[str, float]:
    """Marker counts per language (phrases count double); pidgin wins ties with English when it scores."""
    lowered = text.lower().replace("’", "'")
    words = _WORD.findall(lowered)
    scores = {language: 0.0 for language in LANGUAGES}
    if not words:
        return scores
    padded = f" {' '.join(words)} "
    for language, markers in _MARKERS.items():
        for marker in markers:
            if " " in marker:
                scores[language] += 2 * padded.count(f" {marker} ")
            else:
                scores[language] += words.count(marker)
    if any(ch in lowered for ch in "éèêàçùâîô"):
        scores["fr"] += 2
    # Pidgin shares most of its words with English: a few pidgin markers decide between the two.
    if scores["pcm"] >= 1 and scores["pcm"] * 4 >= scores["en"]:
        scores["pcm"] = max(scores["pcm"], scores["en"] + 0.5)
    return scores


def detect_language(text: str, default: str = "fr", current: str | None = None) -> str:
    """The most likely of fr / en / pcm for ``text``.

    ``default`` when nothing tells (empty, emoji, a name). With ``current`` (the conversation's language) a
    short or mixed message ("ok", "e urgent o") keeps it: only a clear margin switches languages.
    """
    scores = language_scores(text)
    best = max(LANGUAGES, key=lambda language: scores[language])
    if current in LANGUAGES:
        return best if scores[best] - scores[current] >= SWITCH_MARGIN else current
    return best if scores[best] > 0 else default
