"""What the feedback plugin tells the customer, per language, English as fallback.

A deployment adds or overrides languages through ``[plugins.feedback]``'s tables.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HANDED_OFF", "SORRY", "THANKS"]

THANKS: Mapping[str, str] = {
    "en": "Thanks for your feedback!",
    "es": "¡Gracias por tu opinión!",
    "fr": "Merci pour votre retour !",
    "de": "Danke für Ihr Feedback!",
    "pt": "Obrigado pelo seu feedback!",
    "it": "Grazie per il tuo feedback!",
}

SORRY: Mapping[str, str] = {
    "en": "Sorry that didn't help. Could you tell me more, or ask in other words?",
    "es": "Siento que no te haya ayudado. ¿Puedes contarme más o preguntarlo de otra forma?",
    "fr": "Désolé que cela ne vous ait pas aidé. Pouvez-vous m'en dire plus ou reformuler "
    "votre question ?",
    "de": "Schade, dass das nicht geholfen hat. Können Sie mehr erzählen oder anders fragen?",
    "pt": "Lamento que não tenha ajudado. Pode contar-me mais ou perguntar de outra forma?",
    "it": "Mi dispiace che non sia stato d'aiuto. Puoi dirmi di più o chiederlo in altre parole?",
}

# on_bad = "handoff": the conversation goes to a colleague.
HANDED_OFF: Mapping[str, str] = {
    "en": "Sorry that didn't help. A colleague will take over and reply here as soon as they can.",
    "es": "Siento que no te haya ayudado. Un compañero continuará y te responderá aquí lo "
    "antes posible.",
    "fr": "Désolé que cela ne vous ait pas aidé. Un collègue prend le relais et vous "
    "répondra ici au plus vite.",
    "de": "Schade, dass das nicht geholfen hat. Ein Kollege übernimmt und antwortet Ihnen "
    "hier so bald wie möglich.",
    "pt": "Lamento que não tenha ajudado. Um colega vai continuar e responderá aqui assim "
    "que possível.",
    "it": "Mi dispiace che non sia stato d'aiuto. Un collega subentrerà e ti risponderà qui "
    "il prima possibile.",
}
