"""The connector's own short texts (``/start``, ``/help``, "I can only read text").

Telegram sends the user's interface language as ``language_code`` (``"es"``,
``"pt-br"``); it is a hint, used to pick one of these tables' entries, falling back to the
primary subtag and then to English. ``[connectors.telegram]`` can override any entry.
"""

# ruff: noqa: RUF001  (the tables hold other scripts and typographic dashes on purpose)
from __future__ import annotations

from collections.abc import Mapping

__all__ = ["GREETING", "HELP", "UNSUPPORTED", "pick", "pick_tagged"]

GREETING: dict[str, str] = {
    "en": "Hello! I'm here to help. Write your question in a message and I'll answer "
    "right away. Type /help to learn more.",
    "es": "¡Hola! Estoy aquí para ayudarte. Escribe tu pregunta en un mensaje y te "
    "responderé enseguida. Escribe /help para saber más.",
    "fr": "Bonjour ! Je suis là pour vous aider. Écrivez votre question dans un message "
    "et je vous répondrai tout de suite. Tapez /help pour en savoir plus.",
    "de": "Hallo! Ich bin hier, um zu helfen. Schreiben Sie Ihre Frage in eine Nachricht, "
    "und ich antworte sofort. Mit /help erfahren Sie mehr.",
    "pt": "Olá! Estou aqui para ajudar. Escreva sua pergunta em uma mensagem e eu respondo "
    "em seguida. Digite /help para saber mais.",
    "it": "Ciao! Sono qui per aiutarti. Scrivi la tua domanda in un messaggio e ti "
    "risponderò subito. Scrivi /help per saperne di più.",
    "ru": "Здравствуйте! Я здесь, чтобы помочь. Напишите свой вопрос в сообщении, и я "
    "сразу отвечу. Наберите /help, чтобы узнать больше.",
}

HELP: dict[str, str] = {
    "en": "Write your question as a text message and I'll answer it here. In groups, "
    "mention me or reply to my message. Commands: /start – welcome message, /help – "
    "this help.",
    "es": "Escribe tu pregunta en un mensaje de texto y te responderé aquí. En los "
    "grupos, mencióname o responde a mi mensaje. Comandos: /start – mensaje de "
    "bienvenida, /help – esta ayuda.",
    "fr": "Écrivez votre question dans un message texte et je vous répondrai ici. Dans "
    "les groupes, mentionnez-moi ou répondez à mon message. Commandes : /start – "
    "message d'accueil, /help – cette aide.",
    "de": "Schreiben Sie Ihre Frage als Textnachricht, und ich antworte hier. In Gruppen "
    "erwähnen Sie mich oder antworten auf meine Nachricht. Befehle: /start – "
    "Begrüßung, /help – diese Hilfe.",
    "pt": "Escreva sua pergunta em uma mensagem de texto e eu respondo aqui. Em grupos, "
    "mencione-me ou responda à minha mensagem. Comandos: /start – mensagem de "
    "boas-vindas, /help – esta ajuda.",
    "it": "Scrivi la tua domanda in un messaggio di testo e ti risponderò qui. Nei "
    "gruppi, menzionami o rispondi al mio messaggio. Comandi: /start – messaggio di "
    "benvenuto, /help – questo aiuto.",
    "ru": "Напишите свой вопрос текстовым сообщением, и я отвечу здесь. В группах "
    "упомяните меня или ответьте на моё сообщение. Команды: /start – приветствие, "
    "/help – эта справка.",
}

UNSUPPORTED: dict[str, str] = {
    "en": "Sorry, I can only read text messages – not stickers, photos, voice messages "
    "or files. Please write your question in words.",
    "es": "Lo siento, solo puedo leer mensajes de texto, no stickers, fotos, mensajes de "
    "voz ni archivos. Por favor, escribe tu pregunta con palabras.",
    "fr": "Désolé, je ne peux lire que des messages texte, pas les stickers, photos, "
    "messages vocaux ou fichiers. Merci d'écrire votre question avec des mots.",
    "de": "Entschuldigung, ich kann nur Textnachrichten lesen – keine Sticker, Fotos, "
    "Sprachnachrichten oder Dateien. Bitte schreiben Sie Ihre Frage in Worten.",
    "pt": "Desculpe, só consigo ler mensagens de texto, não figurinhas, fotos, mensagens "
    "de voz ou arquivos. Por favor, escreva sua pergunta em palavras.",
    "it": "Mi dispiace, posso leggere solo messaggi di testo, non sticker, foto, messaggi "
    "vocali o file. Per favore, scrivi la tua domanda a parole.",
    "ru": "Извините, я понимаю только текстовые сообщения – не стикеры, фото, голосовые "
    "сообщения или файлы. Пожалуйста, напишите свой вопрос словами.",
}


def _candidates(language_code: str | None) -> list[str]:
    if not language_code:
        return []
    tag = language_code.strip().lower().replace("_", "-")[:35]
    primary = tag.split("-", 1)[0]
    return [tag, primary] if primary != tag else [tag]


def pick(
    table: Mapping[str, str],
    language_code: str | None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The entry for ``language_code``: exact tag, then its primary subtag, then English.

    ``overrides`` (from the config, keys lower-case) win over ``table`` at each step.
    """
    return pick_tagged(table, language_code, overrides)[0]


def pick_tagged(
    table: Mapping[str, str],
    language_code: str | None,
    overrides: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """``pick``'s entry with the language tag it was found under (its language)."""
    for key in [*_candidates(language_code), "en"]:
        for source in (overrides or {}, table):
            text = source.get(key)
            if text:
                return text, key
    return table["en"], "en"
