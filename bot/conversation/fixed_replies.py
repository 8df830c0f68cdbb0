"""Words the product says without a model, in each customer language (fr, en, pcm).

The holding reply goes out when no provider can answer; it must be short, true, and promise nothing
a human will not do. The not-processed reply goes out when a message is given up (every provider refused
it, or it keeps breaking something): the customer is asked to say it differently. Default suggestions
stand in when no model can write them.
"""

from __future__ import annotations

HOLDING_REPLY = {
    "fr": "Nous avons bien reçu votre demande. Un conseiller Djobea revient vers vous très vite.",
    "en": "We have received your request. A Djobea adviser will get back to you very soon.",
    "pcm": "We don receive your message. Djobea person go answer you quick quick.",
}

NOT_PROCESSED_REPLY = {
    "fr": "Désolé, je n'ai pas pu traiter ce message. Pouvez-vous le reformuler ? "
    "Un conseiller peut aussi vous recontacter.",
    "en": "Sorry, I could not process this message. Could you say it another way? An adviser can also call you back.",
    "pcm": "Sorry, I no fit handle dis message. Abeg, you fit talk am another way? Djobea person fit also call you.",
}

MEDIA_RECEIVED = {
    "fr": "Merci, nous avons bien reçu votre {what}.",
    "en": "Thank you, we have received your {what}.",
    "pcm": "Thank you, we don receive your {what}.",
}
MEDIA_WHAT = {
    "fr": {"image": "photo", "video": "vidéo", "audio": "message vocal", "other": "fichier"},
    "en": {"image": "photo", "video": "video", "audio": "voice note", "other": "file"},
    "pcm": {"image": "picture", "video": "video", "audio": "voice note", "other": "file"},
}

# A voice note no model could hear (no provider that takes audio, no transcription, up): the audio is kept, and
# the customer is asked to write instead; their typed message is answered as usual.
TYPE_IT_REPLY = {
    "fr": "Désolé, nous ne pouvons pas écouter les messages vocaux pour le moment. "
    "Pouvez-vous écrire votre demande en texte, s'il vous plaît ?",
    "en": "Sorry, we cannot listen to voice notes right now. Could you type your message, please?",
    "pcm": "Sorry, we no fit hear voice note for now. Abeg, you fit write your message for text?",
}

DEFAULT_SUGGESTIONS = {
    "fr": ["J'ai une fuite d'eau", "Je n'ai plus de courant", "Mon frigo ne marche plus"],
    "en": ["I have a water leak", "My power is out", "My fridge stopped working"],
    "pcm": ["Water di leak for my house", "Light don go for my house", "My fridge no di work"],
}


def holding_reply(language: str) -> str:
    return HOLDING_REPLY.get(language, HOLDING_REPLY["fr"])


def not_processed_reply(language: str) -> str:
    return NOT_PROCESSED_REPLY.get(language, NOT_PROCESSED_REPLY["fr"])


def type_it_reply(language: str) -> str:
    return TYPE_IT_REPLY.get(language, TYPE_IT_REPLY["fr"])


def media_received(language: str, content_types: list[str]) -> str:
    """'Thank you, we have received your photo.' for the first medium's kind (image/..., audio/...)."""
    language = language if language in MEDIA_RECEIVED else "fr"
    major = (content_types[0].split("/", 1)[0] if content_types else "other").lower()
    what = MEDIA_WHAT[language].get(major, MEDIA_WHAT[language]["other"])
    return MEDIA_RECEIVED[language].format(what=what)
