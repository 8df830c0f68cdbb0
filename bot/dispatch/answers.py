"""Reading short WhatsApp answers without a model: an artisan's yes or no to an offer, and a customer asking
where their request is or cancelling it.

An artisan answers in French, English or Pidgin ("OUI", "non merci", "YES", "I go take am", "I no fit"),
optionally with the request number ("OUI 12"), or presses a quick-reply button whose payload names the offer
(``accept:<offer id>`` / ``decline:<offer id>``). Refusals are read before acceptances, so "I no fit take am"
is a no.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from bot.dispatch.quartiers import plain_words

_PAYLOAD = re.compile(r"^\s*(accept|decline|oui|non|yes|no)\s*[:_\- ]\s*(\d+)\s*$", re.IGNORECASE)
_BARE_PAYLOAD = {"accept": True, "oui": True, "yes": True, "decline": False, "non": False, "no": False}

# Whole-word phrases, compared without accents or case.
DECLINE_PHRASES = (
    "i no fit", "no fit", "i no go fit", "i no dey", "i no go", "pas disponible", "pas dispo", "je ne peux pas",
    "je peux pas", "not available", "i can t", "i cannot", "cannot", "je refuse", "pas libre", "non merci",
)  # fmt: skip
ACCEPT_PHRASES = (
    "i go take am", "i take am", "i go do am", "i fit do am", "i dey come", "je prends", "je la prends",
    "je suis disponible", "je suis dispo", "j accepte", "i accept", "d accord", "i go come", "make i take am",
)  # fmt: skip
DECLINE_WORDS = frozenset({"non", "no", "nope", "nah", "refuse", "decline"})
ACCEPT_WORDS = frozenset({"oui", "yes", "ok", "okay", "dac", "ouais", "yep", "accepte", "accept", "wi"})

STATUS_PHRASES = (
    "ou en est", "ou en sont", "statut", "status", "wetin happen", "wetin dey happen", "any update", "des nouvelles",
    "quelles nouvelles", "il arrive quand", "quand arrive", "quand est ce que l artisan", "where is the artisan",
    "where is my", "when is the artisan", "when will the artisan", "na when", "artisan dey come", "suivi",
)  # fmt: skip
CANCEL_PHRASES = ("annuler", "annule", "annulez", "annulation", "cancel")  # not when negated ("ne l'annulez pas")
NO_LONGER_NEEDED_PHRASES = (
    "plus besoin", "no need am again", "i no need am", "no need again", "don t need it anymore", "no longer need",
    "dont need it anymore",
)  # fmt: skip
NEGATIONS = ("pas", "not", "don t", "dont", "never", "jamais")


class AnswerKind(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    offer_id: int | None = None  # from a button payload
    request_ref: int | None = None  # a request number written in the text ("OUI 12")


def parse_artisan_answer(body: str | None, button_payload: str | None = None) -> Answer:
    """What an artisan's message says about an offer."""
    if button_payload and button_payload.strip():
        match = _PAYLOAD.match(button_payload)
        if match:
            kind = AnswerKind.ACCEPT if _BARE_PAYLOAD[match.group(1).lower()] else AnswerKind.DECLINE
            return Answer(kind, offer_id=int(match.group(2)))
        bare = _BARE_PAYLOAD.get(button_payload.strip().lower())
        if bare is not None:
            return Answer(AnswerKind.ACCEPT if bare else AnswerKind.DECLINE, request_ref=_number_in(body))
    words = plain_words(body or "")
    ref = _number_in(body)
    if _has_phrase(words, DECLINE_PHRASES):
        return Answer(AnswerKind.DECLINE, request_ref=ref)
    if _has_phrase(words, ACCEPT_PHRASES):
        return Answer(AnswerKind.ACCEPT, request_ref=ref)
    for word in words:
        if word in DECLINE_WORDS:
            return Answer(AnswerKind.DECLINE, request_ref=ref)
        if word in ACCEPT_WORDS:
            return Answer(AnswerKind.ACCEPT, request_ref=ref)
    return Answer(AnswerKind.UNCLEAR, request_ref=ref)


def asks_for_status(text: str | None) -> bool:
    """ "Où en est ma demande ?", "Wetin happen to my request?", "any update?"."""
    return _has_phrase(plain_words(text or ""), STATUS_PHRASES)


def asks_to_cancel(text: str | None) -> bool:
    """ "Annulez ma demande", "cancel", "I no need am again"; not "ne l'annulez pas" or "don't cancel"."""
    words = plain_words(text or "")
    if _has_phrase(words, NO_LONGER_NEEDED_PHRASES):
        return True
    return _has_phrase(words, CANCEL_PHRASES) and not _has_phrase(words, NEGATIONS)


def _number_in(text: str | None) -> int | None:
    for word in plain_words(text or ""):
        if word.isdigit() and len(word) <= 9:
            return int(word)
    return None


def _has_phrase(words: tuple[str, ...], phrases: tuple[str, ...]) -> bool:
    padded = f" {' '.join(words)} "
    return any(f" {phrase} " in padded for phrase in phrases)
