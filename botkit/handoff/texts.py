"""What the hand-off plugin tells the customer, per language, with English as fallback.

The table is deliberately small (the languages most deployments start with); a
deployment adds or overrides languages through ``replies``/``return_replies`` in
``[plugins.handoff]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from botkit.language.localized import FALLBACK, pick
from botkit.language.tags import primary_subtag, try_normalize

if TYPE_CHECKING:
    from botkit.handoff.hours import OfficeHours

__all__ = [
    "FALLBACK",
    "HANDOFF_REPLIES",
    "OFFLINE_BOT_REPLIES",
    "OFFLINE_HANDOFF_REPLIES",
    "RETURN_HINTS",
    "RETURN_REPLIES",
    "WEEKDAYS",
    "opening_text",
    "pick",
]

HANDOFF_REPLIES: Mapping[str, str] = {
    "en": "Thanks! A colleague will take over and reply here as soon as they can.",
    "es": "¡Gracias! Un compañero continuará y te responderá aquí lo antes posible.",
    "fr": "Merci ! Un collègue prend le relais et vous répondra ici au plus vite.",
    "de": "Danke! Ein Kollege übernimmt und antwortet Ihnen hier so bald wie möglich.",
    "pt": "Obrigado! Um colega vai continuar e responderá aqui assim que possível.",
    "it": "Grazie! Un collega subentrerà e ti risponderà qui il prima possibile.",
}

# Appended to the hand-off reply when a return command is configured ({command}).
RETURN_HINTS: Mapping[str, str] = {
    "en": "Send {command} to talk to the bot again.",
    "es": "Envía {command} para volver a hablar con el bot.",
    "fr": "Envoyez {command} pour reparler au bot.",
    "de": "Senden Sie {command}, um wieder mit dem Bot zu sprechen.",
    "pt": "Envie {command} para voltar a falar com o bot.",
    "it": "Invia {command} per parlare di nuovo con il bot.",
}

RETURN_REPLIES: Mapping[str, str] = {
    "en": "You're talking to the bot again. How can I help?",
    "es": "Vuelves a hablar con el bot. ¿En qué puedo ayudarte?",
    "fr": "Vous parlez de nouveau au bot. Comment puis-je vous aider ?",
    "de": "Sie sprechen wieder mit dem Bot. Wie kann ich helfen?",
    "pt": "Você está falando com o bot novamente. Como posso ajudar?",
    "it": "Stai di nuovo parlando con il bot. Come posso aiutarti?",
}

# The hand-off reply outside office hours (outside = "handoff"); {opens} is when the
# team is next there, e.g. "Monday 09:00 (Europe/Amsterdam)".
OFFLINE_HANDOFF_REPLIES: Mapping[str, str] = {
    "en": "Thanks! Our team is away right now. A colleague will reply here from {opens}.",
    "es": "¡Gracias! Nuestro equipo no está disponible ahora. Un compañero te responderá "
    "aquí a partir del {opens}.",
    "fr": "Merci ! Notre équipe est absente pour le moment. Un collègue vous répondra ici "
    "à partir de {opens}.",
    "de": "Danke! Unser Team ist gerade nicht da. Ein Kollege antwortet Ihnen hier ab {opens}.",
    "pt": "Obrigado! A nossa equipa não está disponível agora. Um colega responderá aqui a "
    "partir de {opens}.",
    "it": "Grazie! Il nostro team al momento non è disponibile. Un collega ti risponderà "
    "qui a partire da {opens}.",
}

# Outside office hours with outside = "bot": the bot keeps the conversation.
OFFLINE_BOT_REPLIES: Mapping[str, str] = {
    "en": "Our team is away right now and back from {opens}. Until then, I'm happy to "
    "help with what I can.",
    "es": "Nuestro equipo no está disponible ahora y vuelve a partir del {opens}. Mientras "
    "tanto, te ayudo en lo que pueda.",
    "fr": "Notre équipe est absente pour le moment et revient à partir de {opens}. D'ici "
    "là, je vous aide volontiers.",
    "de": "Unser Team ist gerade nicht da und ab {opens} wieder erreichbar. Bis dahin "
    "helfe ich gern, so gut ich kann.",
    "pt": "A nossa equipa não está disponível agora e volta a partir de {opens}. Até lá, "
    "ajudo no que puder.",
    "it": "Il nostro team al momento non è disponibile e torna a partire da {opens}. Nel "
    "frattempo ti aiuto volentieri come posso.",
}

# Weekday names, Monday first, for {opens}.
WEEKDAYS: Mapping[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "pt": (
        "segunda-feira",
        "terça-feira",
        "quarta-feira",
        "quinta-feira",
        "sexta-feira",
        "sábado",
        "domingo",
    ),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
}


def opening_text(opens: datetime, language: str, hours: OfficeHours, now: datetime) -> str:
    """``opens`` for a customer in ``language`` (the language of the text it goes in):
    "Monday 09:00 (Europe/Amsterdam)", with the date too when it is six days or more
    away (after a holiday), so "Monday" cannot mean the wrong one. A language without
    weekday names (built in or ``hours.weekdays``) gets the date instead of an English
    day name in the middle of its sentence."""
    tables = {**WEEKDAYS, **hours.weekdays}
    tag = try_normalize(language)
    key = next((k for k in (tag, tag and primary_subtag(tag)) if k and k in tables), None)
    if key is None:
        when = f"{opens:%Y-%m-%d %H:%M}"
    else:
        weekday = tables[key][opens.weekday()]
        far = (opens - now).days >= 6
        when = f"{weekday} {opens:%Y-%m-%d %H:%M}" if far else f"{weekday} {opens:%H:%M}"
    return f"{when} ({hours.timezone})"
