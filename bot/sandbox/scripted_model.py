"""A deterministic stand-in for a model, answering the Djobea prompts the way a model would.

Installed as the sandbox emulator's responder by the WhatsApp runtime when no provider key is set, and
by the standalone emulator (``python -m bot.sandbox.emulator``, behind ``SANDBOX_EMULATOR_URL``), so
``python -m bot chat`` and the webhooks give a sensible demo conversation without keys; tests install
it to script whole conversations. It reads what a model reads (the system prompt's language hint,
"Request so far", "Still missing", the conversation) and answers with the structured JSON the engine
asks for, in the customer's language, with keyword rules in place of understanding. What it sees in a
photo or hears in a voice note of the customer's last message (``bot.sandbox.media``: the manifest's words for
the test fixtures, a generic perception otherwise) counts as the customer's words. Any other prompt gets the
emulator's usual echo, so ``[provider] ...`` replies stay available to other tests.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from bot.sandbox.emulator import EmulatedRequest, echo_reply
from bot.sandbox.media import perceive

_LANGUAGE_HINT = re.compile(r"seems to write in: (fr|en|pcm)\b|customer's language: (fr|en|pcm)\b")
_DRAFT = re.compile(r"^Request so far \(JSON\): (\{.*\})$", re.MULTILINE)
_MISSING = re.compile(r"^Still missing: (.*)$", re.MULTILINE)
FIELDS = ("service_type", "location", "description", "urgency")

# fmt: off
SERVICE_WORDS = {
    "plomberie": ("plomb", "fuite", "fuit", "robinet", "tuyau", "evier", "lavabo", "toilette", "wc", "douche",
                  "coule", "canalisation", "chasse", "plumb", "leak", "pipe", "tap", "sink", "toilet", "shower",
                  "water"),
    "electricite": ("electri", "courant", "lumiere", "ampoule", "prise", "disjoncteur", "cable", "court-circuit",
                    "etincelle", "power", "light", "socket", "bulb", "breaker", "wire", "spark", "current"),
    "electromenager": ("frigo", "refrigerateur", "congelateur", "machine a laver", "tele", "televiseur",
                       "cuisiniere", "micro-onde", "climatiseur", "clim", "fridge", "freezer", "washing machine",
                       "tv", "television", "cooker", "microwave", "air condition", "appliance", "fan",
                       "ventilateur"),
}
PROBLEM_WORDS = ("fuite", "fuit", "coule", "bouche", "casse", "panne", "ne marche", "marche pas", "marche plus",
                 "fonctionne", "gate", "saute", "court-circuit", "etincelle", "plus de courant", "pas de courant",
                 "coupure", "refroidit", "chauffe", "leak", "broken", "not working", "doesn't work", "stopped",
                 "blocked", "no power", "no light", "spark", "spoil", "no dey", "no di", "di leak", "dey leak",
                 "don go", "don cut", "burst", "off", "dead", "is out", "are out", "went out")
QUARTIERS = ("Akwa", "Bonapriso", "Bonanjo", "Deido", "Bali", "Bonaberi", "Makepe", "Logbaba", "Kotto", "Bepanda",
             "Ndokoti", "Bonamoussadi", "Logpom", "Yassa", "Japoma", "Ndogbong", "Nyalla", "Cite des Palmiers",
             "New Bell", "Bassa", "Mboppi", "Denver", "Ange Raphael", "Makepe Missoke", "PK8", "PK10", "PK12",
             "PK14", "Village", "Youpwe", "Ndogpassi", "Beedi", "Bonadibong", "Bonateki", "Koumassi")
LANDMARK = re.compile(r"\b(pres de|a cote de|derriere|en face de|near|behind|opposite|close to|for side)\b(.*)")
URGENCY_WORDS = ("tres urgent", "urgent", "urgence", "tout de suite", "maintenant", "vite", "asap", "right now",
                 "now now", "quick quick", "immediately", "emergency", "aujourd'hui", "aujourdhui", "today",
                 "ce soir", "tonight", "this evening", "cet apres-midi", "this afternoon", "demain matin", "demain",
                 "tomorrow morning", "tomorrow", "tumoro", "cette semaine", "this week", "week-end", "weekend",
                 "pas presse", "not urgent", "no hurry", "quand vous voulez", "anytime", "any time")
YES = ("oui", "yes", "ok", "okay", "d'accord", "daccord", "je confirme", "confirme", "i confirm", "confirm",
       "correct", "c'est bon", "na so", "exactly", "yes o", "yeah", "yep", "sure")
CANCEL = ("annule", "annuler", "cancel", "laisse tomber", "no need", "forget it", "leave am")
# fmt: on

SERVICE_LABEL = {
    "fr": {"plomberie": "plomberie", "electricite": "électricité", "electromenager": "réparation d'électroménager"},
    "en": {"plomberie": "plumbing", "electricite": "electrical work", "electromenager": "appliance repair"},
    "pcm": {"plomberie": "plumbing", "electricite": "electric work", "electromenager": "repair for appliance"},
}
ASK = {
    "fr": {
        "service_type": "Bonjour, ici Djobea ! De quel service avez-vous besoin : plomberie, électricité ou "
        "réparation d'électroménager ?",
        "description": "C'est noté pour la {service}. Pouvez-vous décrire le problème en quelques mots ?",
        "location": "C'est noté pour la {service}. Dans quel quartier de Douala êtes-vous ? Un point de repère "
        "nous aide aussi.",
        "urgency": "Merci. C'est urgent, ou quand souhaitez-vous le passage du technicien ?",
        "summary": "Je récapitule : {service} à {location}. Problème : {description}. Quand : {urgency}. "
        "Confirmez-vous la demande ? (oui/non)",
        "confirmed": "Merci ! Votre demande est enregistrée. Un technicien Djobea vous appelle très bientôt.",
        "cancelled": "D'accord, la demande est annulée. Écrivez-nous quand vous voulez.",
    },
    "en": {
        "service_type": "Hello, this is Djobea! Which service do you need: plumbing, electrical work or appliance "
        "repair?",
        "description": "Noted for {service}. Can you describe the problem in a few words?",
        "location": "Noted for {service}. Which neighbourhood of Douala are you in? A landmark helps too.",
        "urgency": "Thank you. Is it urgent, or when would you like the technician to come?",
        "summary": "To sum up: {service} at {location}. Problem: {description}. When: {urgency}. "
        "Do you confirm the request? (yes/no)",
        "confirmed": "Thank you! Your request is registered. A Djobea technician will call you very soon.",
        "cancelled": "All right, the request is cancelled. Write to us any time.",
    },
    "pcm": {
        "service_type": "Hello, na Djobea! Which work you need: plumbing, electric work or repair for appliance?",
        "description": "We don note am for {service}. Abeg, tell me wetin happen small.",
        "location": "We don note am for {service}. For which quarter for Douala you dey? Tell me one landmark too.",
        "urgency": "Thank you. E urgent, or when you want make technician come?",
        "summary": "Make I check am: {service} for {location}. Problem: {description}. When: {urgency}. "
        "You confirm am? (yes/no)",
        "confirmed": "Thank you! We don register your request. Djobea technician go call you soon soon.",
        "cancelled": "No wahala, we don cancel the request. Write us any time.",
    },
}
SUGGESTIONS = {
    "fr": {
        "service_type": ["J'ai une fuite d'eau", "Je n'ai plus de courant", "Mon frigo ne marche plus"],
        "description": ["L'eau coule sous l'évier", "Le disjoncteur saute", "Le frigo ne refroidit plus"],
        "location": ["Je suis à Akwa", "Je suis à Bonamoussadi", "Je suis à Makepe"],
        "urgency": ["C'est urgent", "Aujourd'hui si possible", "Demain matin"],
        "": ["Oui, je confirme", "Non, je veux modifier", "Combien ça coûte ?"],
    },
    "en": {
        "service_type": ["I have a water leak", "My power is out", "My fridge stopped working"],
        "description": ["Water is leaking under the sink", "The breaker keeps tripping", "The fridge is not cold"],
        "location": ["I am in Akwa", "I am in Bonamoussadi", "I am in Makepe"],
        "urgency": ["It is urgent", "Today if possible", "Tomorrow morning"],
        "": ["Yes, I confirm", "No, I want to change it", "How much will it cost?"],
    },
    "pcm": {
        "service_type": ["Water di leak for my house", "Light don go for my house", "My fridge no di work"],
        "description": ["Water di comot under sink", "Breaker di trip", "Fridge no di cold again"],
        "location": ["I dey for Akwa", "I dey for Bonamoussadi", "I dey for Makepe"],
        "urgency": ["E urgent o", "Today if e possible", "Tomorrow morning"],
        "": ["Yes, I confirm am", "No, I wan change am", "How much e go cost?"],
    },
}


def djobea_model_reply(request: EmulatedRequest) -> str:
    """What a model would answer to this request: a Djobea turn, suggestions, or (other prompts) the echo."""
    system = next((m["content"] for m in request.messages if m["role"] == "system"), "")
    if "quick-reply suggestions" in system:
        return _suggestions(system)
    if "You are Djobea" in system:
        return _turn(system, request)
    return echo_reply(request)


def _turn(system: str, request: EmulatedRequest) -> str:
    language = _language(system)
    draft = _draft(system)
    text, seen = _customer_words(request)
    plain = _plain(text)
    found: dict[str, str] = {}
    service = _service(_plain("\n".join([text, *seen])))
    if service and not draft.get("service_type"):
        found["service_type"] = service
    if not draft.get("description") and (_has_any(plain, PROBLEM_WORDS) or seen):
        found["description"] = _describe(text, seen)
    location = _location(text, plain)
    if location and not draft.get("location"):
        found["location"] = location
    urgency = next((word for word in URGENCY_WORDS if _has_word(plain, word)), None)
    if urgency and not draft.get("urgency"):
        found["urgency"] = urgency
    known = {**{k: v for k, v in draft.items() if k in FIELDS and v}, **found}
    previous = next((m["content"] for m in reversed(request.messages[:-1]) if m["role"] == "assistant"), "")
    asked_to_confirm = "(oui/non)" in previous or "(yes/no)" in previous
    words = ASK[language]
    confirmed = cancelled = False
    if _has_any(plain, CANCEL) and known:
        cancelled, reply = True, words["cancelled"]
    elif asked_to_confirm and all(known.get(f) for f in FIELDS) and _has_any(plain, YES):
        confirmed, reply = True, words["confirmed"]
    else:
        missing = next((f for f in FIELDS if not known.get(f)), None)
        labels = SERVICE_LABEL[language]
        values = {
            "service": labels.get(known.get("service_type", ""), labels["plomberie"]),
            "location": known.get("location", ""),
            "description": known.get("description", ""),
            "urgency": known.get("urgency", ""),
        }
        reply = words[missing or "summary"].format(**values)
    return json.dumps(
        {
            "language": language,
            "reply": reply,
            **{name: found.get(name) for name in FIELDS},
            "customer_confirmed": confirmed,
            "customer_cancelled": cancelled,
        },
        ensure_ascii=False,
    )


def _customer_words(request: EmulatedRequest) -> tuple[str, list[str]]:
    """The last turn as the model takes it in: what was typed plus what it hears in the voice notes, and
    apart, what it sees in the photos (which describe the problem but name no quartier or urgency)."""
    media = request.last_user_media
    heard = [perceive(m.kind, m.mime_type, m.sha256, m.size) for m in media if m.kind == "audio"]
    seen = [perceive(m.kind, m.mime_type, m.sha256, m.size) for m in media if m.kind != "audio"]
    return "\n".join([request.last_user_text, *heard]) if heard else request.last_user_text, seen


def _describe(text: str, seen: list[str]) -> str:
    line = _first_line(text)
    if not seen:
        return line
    typed = [line] if line and not line.startswith("[") else []
    return "; ".join(typed + seen)[:160]


def _suggestions(system: str) -> str:
    language = _language(system)
    missing = _MISSING.search(system)
    first = (missing.group(1).split(",")[0].strip() if missing else "") or ""
    table = SUGGESTIONS[language]
    return json.dumps({"suggestions": table.get(first, table["service_type"])}, ensure_ascii=False)


def _language(system: str) -> str:
    match = _LANGUAGE_HINT.search(system)
    return (match.group(1) or match.group(2)) if match else "fr"


def _draft(system: str) -> dict[str, Any]:
    match = _DRAFT.search(system)
    try:
        return json.loads(match.group(1)) if match else {}
    except ValueError:
        return {}


def _plain(text: str) -> str:
    """Lower case without accents, so 'électricité' and 'electricite' match alike."""
    return unicodedata.normalize("NFKD", text.lower().replace("’", "'")).encode("ascii", "ignore").decode()


def _has_word(plain: str, word: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(word)}", plain) is not None


def _has_any(plain: str, words: tuple[str, ...]) -> bool:
    return any(_has_word(plain, word) for word in words)


def _service(plain: str) -> str | None:
    for service, words in SERVICE_WORDS.items():
        if _has_any(plain, words):
            return service
    return None


def _location(text: str, plain: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("[the customer shared a WhatsApp location"):
            return line.strip("[]").split(": ", 1)[-1]
    quartier = next((q for q in QUARTIERS if _has_word(plain, _plain(q))), None)
    landmark = LANDMARK.search(plain)
    if quartier is None and landmark is None:
        return None
    parts = [quartier] if quartier else []
    if landmark:
        start = landmark.start()
        parts.append(_first_line(text[start:]).rstrip(".!?"))
    return ", ".join(parts)


def _first_line(text: str) -> str:
    line = next((line for line in text.splitlines() if line.strip() and not line.startswith("[")), text)
    return line.strip()[:160]
