"""The connector's own short texts (``/start``, ``/help``, "I can only read text").

Telegram sends the user's interface language as ``language_code`` (``"es"``,
``"pt-br"``, ``"zh-hans"``); it is a hint, used to pick one of these tables' entries,
falling back to the primary subtag (Chinese: to its script's entry) and then to English.
``[connectors.telegram]`` can override any entry.

The tables speak the web widget's 13 languages (``botkit.language.default_texts
.LANGUAGES``) with the same "you" as the rest of botkit's texts: informal in es, it and
nl; formal in fr, de, ru and tr; Brazilian "você" in pt; polite forms in zh and ja.
"""

# ruff: noqa: RUF001  (the tables hold other scripts and typographic dashes on purpose)
from __future__ import annotations

from collections.abc import Mapping

from botkit.language.tags import script_subtag, try_normalize

__all__ = ["GREETING", "HELP", "UNSUPPORTED", "pick", "pick_tagged"]

# The script a bare "zh" is written in (``normalize_tag("zh")`` is "zh-Hans").
_BARE_ZH_SCRIPT = "Hans"

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
    "nl": "Hallo! Ik ben er om je te helpen. Schrijf je vraag in een bericht, dan "
    "antwoord ik meteen. Typ /help voor meer informatie.",
    "zh-Hans": "您好！我在这里为您提供帮助。请在消息中写下您的问题，我会马上回复。"
    "输入 /help 了解更多。",
    "zh-Hant": "您好！我在這裡為您提供協助。請在訊息中寫下您的問題，我會馬上回覆。"
    "輸入 /help 了解更多。",
    "ja": "こんにちは！お手伝いいたします。ご質問をメッセージでお送りいただければ、"
    "すぐにお答えします。詳しくは /help と入力してください。",
    "ar": "مرحبًا! أنا هنا لمساعدتك. اكتب سؤالك في رسالة وسأجيبك على الفور. اكتب /help "
    "لمعرفة المزيد.",
    "ru": "Здравствуйте! Я здесь, чтобы помочь. Напишите свой вопрос в сообщении, и я "
    "сразу отвечу. Наберите /help, чтобы узнать больше.",
    "tr": "Merhaba! Size yardımcı olmak için buradayım. Sorunuzu bir mesajla yazın, hemen "
    "yanıtlayayım. Daha fazla bilgi için /help yazın.",
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
    "nl": "Schrijf je vraag in een tekstbericht, dan beantwoord ik die hier. In groepen: "
    "vermeld me of reageer op mijn bericht. Opdrachten: /start – welkomstbericht, "
    "/help – deze hulp.",
    "zh-Hans": "请用文字消息写下您的问题，我会在这里回复。在群组中，请提及我或回复我的消息。"
    "命令：/start – 欢迎消息，/help – 本帮助。",
    "zh-Hant": "請用文字訊息寫下您的問題，我會在這裡回覆。在群組中，請提及我或回覆我的訊息。"
    "指令：/start – 歡迎訊息，/help – 本說明。",
    "ja": "ご質問をテキストメッセージでお送りください。こちらでお答えします。グループでは、"
    "私をメンションするか、私のメッセージに返信してください。コマンド：/start – "
    "ウェルカムメッセージ、/help – このヘルプ。",
    "ar": "اكتب سؤالك في رسالة نصية وسأجيبك هنا. في المجموعات، أشِر إليّ أو ردّ على "
    "رسالتي. الأوامر: /start – رسالة الترحيب، /help – هذه المساعدة.",
    "ru": "Напишите свой вопрос текстовым сообщением, и я отвечу здесь. В группах "
    "упомяните меня или ответьте на моё сообщение. Команды: /start – приветствие, "
    "/help – эта справка.",
    "tr": "Sorunuzu bir metin mesajı olarak yazın, burada yanıtlarım. Gruplarda beni "
    "etiketleyin veya mesajıma yanıt verin. Komutlar: /start – karşılama mesajı, "
    "/help – bu yardım.",
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
    "nl": "Sorry, ik kan alleen tekstberichten lezen – geen stickers, foto's, "
    "spraakberichten of bestanden. Schrijf je vraag alsjeblieft in woorden.",
    "zh-Hans": "抱歉，我只能阅读文字消息，无法读取贴纸、照片、语音消息或文件。"
    "请用文字写下您的问题。",
    "zh-Hant": "抱歉，我只能閱讀文字訊息，無法讀取貼圖、照片、語音訊息或檔案。"
    "請用文字寫下您的問題。",
    "ja": "申し訳ありません。読み取れるのはテキストメッセージのみで、スタンプ、写真、"
    "ボイスメッセージ、ファイルは読み取れません。ご質問を文章でお送りください。",
    "ar": "عذرًا، لا يمكنني قراءة سوى الرسائل النصية، وليس الملصقات أو الصور أو الرسائل "
    "الصوتية أو الملفات. يُرجى كتابة سؤالك بالكلمات.",
    "ru": "Извините, я понимаю только текстовые сообщения – не стикеры, фото, голосовые "
    "сообщения или файлы. Пожалуйста, напишите свой вопрос словами.",
    "tr": "Üzgünüm, yalnızca metin mesajlarını okuyabiliyorum; çıkartmaları, fotoğrafları, "
    "sesli mesajları veya dosyaları okuyamıyorum. Lütfen sorunuzu kelimelerle yazın.",
}


def _candidates(language_code: str | None) -> list[list[str]]:
    """Lower-case keys to try for ``language_code``, most specific first, in tiers: an
    override for a key beats the built-in text of its tier and of later tiers only."""
    if not language_code:
        return []
    tag = language_code.strip().lower().replace("_", "-")[:35]
    primary = tag.split("-", 1)[0]
    keys = [tag]
    if primary == "zh":
        # Chinese goes by script, as everywhere in botkit (``normalize_tag``): "zh-tw",
        # "zh-hk" and "zh-hant-*" read Traditional, "zh", "zh-cn" and "zh-hans-*"
        # Simplified; the primary subtag alone would pick neither table entry.
        normal = try_normalize(tag)
        script = script_subtag(normal) if normal else None
        if script:
            keys.append(f"zh-{script.lower()}")
            if script != _BARE_ZH_SCRIPT:
                # A bare "zh" override is Simplified text: the built-in Traditional one
                # reads better to a zh-tw user (an operator's "zh-hant" or "zh-tw" one
                # still wins).
                return [list(dict.fromkeys(keys)), [primary]]
    keys.append(primary)
    return [list(dict.fromkeys(keys))]


def pick(
    table: Mapping[str, str],
    language_code: str | None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The entry for ``language_code``: exact tag, then (Chinese) its script's entry,
    then its primary subtag, then English.

    Keys are compared case-insensitively (Telegram sends ``"zh-hans"``, the tables say
    ``"zh-Hans"``). ``overrides`` (from the config, keys lower-case) for any of those
    tags win over ``table``: an operator's own text for the user's language beats a
    built-in one, and an English override beats the built-in English. One exception: a
    bare ``zh`` override (Simplified, as bare ``zh`` is everywhere in botkit) does not
    beat the built-in text for a Traditional-Chinese user (``zh-tw``, ``zh-hk``,
    ``zh-hant``), whose script it is not written in.
    """
    return pick_tagged(table, language_code, overrides)[0]


def pick_tagged(
    table: Mapping[str, str],
    language_code: str | None,
    overrides: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """``pick``'s entry with the language tag it was found under (its language): the
    table's own spelling of the key (``"zh-Hant"``), or the override's."""
    built_in = {key.lower(): key for key in table}
    for candidates in [*_candidates(language_code), ["en"]]:
        for key in candidates:
            text = (overrides or {}).get(key)
            if text:
                return text, key
        for key in candidates:
            found = built_in.get(key)
            if found is not None and table[found]:
                return table[found], found
    return table["en"], "en"
