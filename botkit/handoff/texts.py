"""What the hand-off plugin tells the customer, per language, with English as fallback.

The table is deliberately small (the languages most deployments start with); a
deployment adds or overrides languages through ``replies``/``return_replies`` in
``[plugins.handoff]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from botkit.language.localized import FALLBACK, pick

__all__ = ["FALLBACK", "HANDOFF_REPLIES", "RETURN_HINTS", "RETURN_REPLIES", "pick"]

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
