"""What dispatch says, without a model: to customers in their language (fr, en, pcm), to artisans and staff in
French (artisans may answer in French, English or Pidgin).

The offer is one text whether it goes out free-form or as the approved WhatsApp template: ``OFFER_TEMPLATE``
is the template's body as submitted to Meta, ``{{n}}`` its variables, so the free text and what Twilio
renders are the same words (which is also how a send whose answer was lost is found again at Twilio).
An offer never carries the customer's number: phone numbers the customer typed are masked in what artisans see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# The body of TWILIO_OFFER_CONTENT_SID; its quick-reply buttons (if any) carry ids accept:{{6}} / decline:{{6}}.
OFFER_TEMPLATE = (
    "Djobea : nouvelle demande n°{{1}} – {{2}} à {{3}}. Problème : {{4}}. Urgence : {{5}}. "
    "Répondez OUI pour la prendre ou NON si vous n'êtes pas disponible (YES / NO)."
)
FIELD_MAX_CHARS = 200  # a template variable, and what an offer shows of the problem
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s.\-]?\d){7,}")
_VARIABLE = re.compile(r"\{\{(\d+)\}\}")

TRADE_LABELS = {
    "fr": {"plomberie": "plomberie", "electricite": "électricité", "electromenager": "électroménager"},
    "en": {"plomberie": "plumbing", "electricite": "electrical work", "electromenager": "appliance repair"},
    "pcm": {"plomberie": "plumbing", "electricite": "light work", "electromenager": "machine repair"},
}

CUSTOMER_TEXTS: dict[str, dict[str, str]] = {
    "assigned": {
        "fr": "Bonne nouvelle : {name} ({number}), {trade}, s'occupe de votre demande n°{id}. Cette personne vous "
        "contacte très vite ; vous pouvez aussi l'appeler directement.",
        "en": "Good news: {name} ({number}), {trade}, is taking care of your request no. {id}. They will contact "
        "you very soon; you can also call them directly.",
        "pcm": "Good news: {name} ({number}), {trade}, go handle your request no. {id}. E go call you quick quick; "
        "you fit also call am direct.",
    },
    "exhausted": {
        "fr": "Nous n'avons pas encore trouvé d'artisan disponible pour votre demande n°{id}. Un conseiller Djobea "
        "va vous appeler très vite.",
        "en": "We have not yet found an available artisan for your request no. {id}. A Djobea adviser will call "
        "you very soon.",
        "pcm": "We never find artisan wey free for your request no. {id} yet. Djobea person go call you quick quick.",
    },
    "cancelled_by_staff": {
        "fr": "Votre demande n°{id} a été annulée. Écrivez-nous si vous avez encore besoin d'aide.",
        "en": "Your request no. {id} has been cancelled. Write to us if you still need help.",
        "pcm": "Your request no. {id} don cancel. Write us if you still need help.",
    },
    "cancelled_by_customer": {
        "fr": "C'est noté : votre demande n°{id} est annulée. Écrivez-nous quand vous voulez pour un autre problème.",
        "en": "Done: your request no. {id} is cancelled. Write to us any time about another problem.",
        "pcm": "E don do: your request no. {id} don cancel. Write us any time for another wahala.",
    },
    "status_offering": {
        "fr": "Votre demande n°{id} ({trade}, {place}) est confirmée : nous la proposons aux artisans disponibles. "
        "Vous recevrez le nom et le numéro de l'artisan dès qu'il l'accepte.",
        "en": "Your request no. {id} ({trade}, {place}) is confirmed: we are offering it to available artisans. "
        "You will get the artisan's name and number as soon as one accepts.",
        "pcm": "Your request no. {id} ({trade}, {place}) don confirm: we dey show am to artisans wey free. "
        "You go get the artisan name and number once one accept am.",
    },
    "status_exhausted": {
        "fr": "Votre demande n°{id} ({trade}, {place}) n'a pas encore trouvé d'artisan. Un conseiller Djobea va vous "
        "appeler très vite.",
        "en": "Your request no. {id} ({trade}, {place}) has no artisan yet. A Djobea adviser will call you very soon.",
        "pcm": "Your request no. {id} ({trade}, {place}) never get artisan yet. Djobea person go call you quick quick.",
    },
    "status_assigned": {
        "fr": "{name} ({number}) s'occupe de votre demande n°{id} ({trade}, {place}). Vous pouvez l'appeler "
        "directement.",
        "en": "{name} ({number}) is taking care of your request no. {id} ({trade}, {place}). You can call them "
        "directly.",
        "pcm": "{name} ({number}) dey handle your request no. {id} ({trade}, {place}). You fit call am direct.",
    },
    "status_in_progress": {
        "fr": "{name} ({number}) est en train de traiter votre demande n°{id} ({trade}, {place}).",
        "en": "{name} ({number}) is working on your request no. {id} ({trade}, {place}).",
        "pcm": "{name} ({number}) dey work for your request no. {id} ({trade}, {place}).",
    },
    "status_done": {
        "fr": "Votre demande n°{id} ({trade}, {place}) est terminée. Merci d'avoir choisi Djobea !",
        "en": "Your request no. {id} ({trade}, {place}) is done. Thank you for choosing Djobea!",
        "pcm": "Your request no. {id} ({trade}, {place}) don finish. Thank you say you choose Djobea!",
    },
    "status_cancelled": {
        "fr": "Votre demande n°{id} ({trade}, {place}) a été annulée. Décrivez-nous votre problème pour en ouvrir "
        "une nouvelle.",
        "en": "Your request no. {id} ({trade}, {place}) was cancelled. Tell us your problem to open a new one.",
        "pcm": "Your request no. {id} ({trade}, {place}) don cancel. Tell us your wahala make we open new one.",
    },
}

ARTISAN_TEXTS = {
    "won": "C'est pour vous ! Demande n°{id} : {trade} à {place}{location}. Problème : {problem}. Urgence : "
    "{urgency}. Client : {customer}. Appelez-le dès maintenant. Merci !",
    "assigned_by_staff": "L'équipe Djobea vous confie la demande n°{id} : {trade} à {place}{location}. Problème : "
    "{problem}. Urgence : {urgency}. Client : {customer}. Appelez-le dès maintenant. Merci !",
    "taken": "La demande n°{id} ({trade}, {place}) a déjà été prise par un autre artisan. Merci, à la prochaine !",
    "withdrawn": "La demande n°{id} ({trade}, {place}) a été annulée : ne vous déplacez pas. Merci !",
    "reassigned": "La demande n°{id} ({trade}, {place}) a été confiée à un autre artisan : ne vous déplacez pas.",
    "declined": "C'est noté, merci. Nous vous proposerons d'autres demandes.",
    "already_yours": "La demande n°{id} est déjà à vous. Client : {customer}.",
    "too_late": "Désolé, la demande n°{id} a déjà été prise par un autre artisan. Merci quand même !",
    "no_longer_open": "La demande n°{id} n'est plus ouverte (annulée ou terminée). Merci !",
    "which": "Vous avez plusieurs demandes en attente ({refs}). Répondez avec le numéro, par exemple OUI {first} "
    "ou NON {first}.",
    "help": "Répondez OUI pour prendre la demande n°{id}, ou NON si vous n'êtes pas disponible.",
    "no_offer": "Vous n'avez aucune demande en attente de réponse. Nous vous écrirons dès qu'une demande "
    "correspond à votre métier.",
}

STAFF_TEXTS = {
    "new_request": "[Djobea] Nouvelle demande n°{id} confirmée : {trade} à {place} (urgence : {urgency}). "
    "Problème : {problem}. Client : {customer}.",
    "no_artisan": "[Djobea] Aucun artisan n'a accepté la demande n°{id} ({trade} à {place}) : {why}. Appelez le "
    "client au {customer}.",
    "manual": "[Djobea] Nouvelle demande n°{id} confirmée ({trade} à {place}) sans numéro WhatsApp client "
    "(chat web) : à traiter par l'équipe. Problème : {problem}.",
}


def customer_text(which: str, language: str | None, /, **values: object) -> str:
    texts = CUSTOMER_TEXTS[which]
    return texts.get(language or "fr", texts["fr"]).format(**values)


def trade_label(trade: str | None, language: str | None = "fr") -> str:
    labels = TRADE_LABELS.get(language or "fr", TRADE_LABELS["fr"])
    return labels.get(trade or "", trade or "?")


def masked(text: str | None, limit: int = FIELD_MAX_CHARS) -> str:
    """``text`` on one line, phone numbers masked, at most ``limit`` characters ('-' when empty)."""
    one_line = " ".join((text or "").split())
    one_line = _PHONE_LIKE.sub("[numéro masqué]", one_line)
    if len(one_line) > limit:
        one_line = one_line[: limit - 1].rstrip() + "…"
    return one_line or "-"


def render_template(template: str, variables: Mapping[str, str]) -> str:
    """``{{1}}``-style variables replaced, as WhatsApp renders an approved template."""
    return _VARIABLE.sub(lambda match: variables.get(match.group(1), ""), template)
