"""The core's built-in customer-facing texts, in the languages the web widget speaks.

``bot.fallback_reply``, ``bot.busy_reply``, ``bot.too_long_reply``, ``bot.empty_reply``,
``bot.rate_limit.reply`` and the language switch's ``switch_reply`` /
``switch_unknown_reply`` default to the English entry of a table here. The rule
(``default_text_in``):

* A setting that still equals the built-in English text was not customized: the customer
  gets the table's entry for their language (``pick``: zh-TW gets ``zh-Hant``), labelled
  with the language it is really in, so ``pivot`` mode does not translate it again. A
  language the table lacks gets the working language's entry (``fallback_key``): a
  deployment working in German that kept the defaults answers in German, and in
  ``pivot`` mode that German is what gets translated.
* A customized setting is the operator's text in the working language, used verbatim
  (and translated by ``pivot`` mode, as any working-language reply).

``set_default_reply`` answers with such a text; before the language middleware ran
(the rate-limit, too-long and empty-message notices) it uses the conversation's or the
contact's language, as ``NoticeTranslationMiddleware`` does.
"""

# ruff: noqa: RUF001 - the texts use their languages' own letters and punctuation

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from botkit.language.codes import english_name, language_info
from botkit.language.tags import primary_subtag, same_language

if TYPE_CHECKING:
    from botkit.language.localized import TextIn
    from botkit.pipeline.context import Context, Reply

# ``botkit.language.localized`` is imported where it is used: it imports the pipeline,
# whose middleware (rate limit, sanitize) and generation handler import this module.

__all__ = [
    "BUSY_REPLIES",
    "EMPTY_REPLIES",
    "FALLBACK_REPLIES",
    "LANGUAGES",
    "RATE_LIMIT_REPLIES",
    "SWITCH_REPLIES",
    "SWITCH_UNKNOWN_REPLIES",
    "TABLES",
    "TOO_LONG_REPLIES",
    "default_text_in",
    "in_working_language",
    "language_name_in",
    "set_default_reply",
]

# The web widget's languages (connectors/web/static/widget.js); every table has them all.
LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "zh-Hans", "zh-Hant", "ja", "ar", "ru", "tr")

# "You" as the hand-off and feedback tables and the widget have it: informal in es, it and
# nl; formal in fr, de, ru and tr; Brazilian "você" in pt; polite forms in zh and ja.

FALLBACK_REPLIES: Mapping[str, str] = {
    "en": "Sorry, something went wrong on our side. Please try again in a moment.",
    "es": "Lo sentimos, algo ha fallado por nuestra parte. Inténtalo de nuevo en un momento.",
    "fr": "Désolé, un problème est survenu de notre côté. Veuillez réessayer dans un instant.",
    "de": "Entschuldigung, bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es gleich "
    "noch einmal.",
    "pt": "Desculpe, algo deu errado do nosso lado. Tente novamente em instantes.",
    "it": "Ci dispiace, qualcosa non ha funzionato da parte nostra. Riprova tra un momento.",
    "nl": "Sorry, er ging bij ons iets mis. Probeer het zo meteen opnieuw.",
    "zh-Hans": "抱歉，我们这边出了点问题。请稍后再试。",
    "zh-Hant": "抱歉，我們這邊出了點問題。請稍後再試。",
    "ja": "申し訳ありません。こちらで問題が発生しました。しばらくしてからもう一度お試しください。",
    "ar": "عذرًا، حدث خطأ من جهتنا. يُرجى المحاولة مرة أخرى بعد قليل.",
    "ru": "Извините, у нас что-то пошло не так. Пожалуйста, попробуйте ещё раз чуть позже.",
    "tr": "Üzgünüz, bizim tarafımızda bir sorun oluştu. Lütfen birazdan tekrar deneyin.",
}

BUSY_REPLIES: Mapping[str, str] = {
    "en": "We are receiving a lot of messages right now. Please try again in a minute.",
    "es": "Ahora mismo estamos recibiendo muchos mensajes. Inténtalo de nuevo en un minuto.",
    "fr": "Nous recevons beaucoup de messages en ce moment. Veuillez réessayer dans une minute.",
    "de": "Wir erhalten gerade sehr viele Nachrichten. Bitte versuchen Sie es in einer Minute "
    "noch einmal.",
    "pt": "Estamos recebendo muitas mensagens no momento. Tente novamente em um minuto.",
    "it": "Stiamo ricevendo molti messaggi in questo momento. Riprova tra un minuto.",
    "nl": "We krijgen op dit moment veel berichten. Probeer het over een minuut opnieuw.",
    "zh-Hans": "目前消息较多，请一分钟后再试。",
    "zh-Hant": "目前訊息較多，請一分鐘後再試。",
    "ja": "ただいまメッセージが大変混み合っています。1分ほどしてからもう一度お試しください。",
    "ar": "نتلقى عددًا كبيرًا من الرسائل حاليًا. يُرجى المحاولة مرة أخرى بعد دقيقة.",
    "ru": "Сейчас мы получаем очень много сообщений. Пожалуйста, попробуйте ещё раз через минуту.",
    "tr": "Şu anda çok sayıda mesaj alıyoruz. Lütfen bir dakika sonra tekrar deneyin.",
}

# {length} and {limit} are numbers; the ar and ru texts put them after a noun ("number
# of characters: 5000") so no plural or case has to agree with them.
TOO_LONG_REPLIES: Mapping[str, str] = {
    "en": "Your message is too long ({length} characters, the limit is {limit}). "
    "Please shorten it or split it into several messages.",
    "es": "Tu mensaje es demasiado largo ({length} caracteres; el límite es {limit}). "
    "Acórtalo o divídelo en varios mensajes.",
    "fr": "Votre message est trop long ({length} caractères, la limite est de {limit}). "
    "Veuillez le raccourcir ou le répartir en plusieurs messages.",
    "de": "Ihre Nachricht ist zu lang ({length} Zeichen, erlaubt sind {limit}). "
    "Bitte kürzen Sie sie oder teilen Sie sie auf mehrere Nachrichten auf.",
    "pt": "Sua mensagem é longa demais ({length} caracteres; o limite é {limit}). "
    "Encurte-a ou divida-a em várias mensagens.",
    "it": "Il tuo messaggio è troppo lungo ({length} caratteri, il limite è {limit}). "
    "Accorcialo o dividilo in più messaggi.",
    "nl": "Je bericht is te lang ({length} tekens, het maximum is {limit}). "
    "Maak het korter of verdeel het over meerdere berichten.",
    "zh-Hans": "您的消息过长（{length} 个字符，上限为 {limit} 个）。请缩短内容或分成几条消息发送。",
    "zh-Hant": "您的訊息過長（{length} 個字元，上限為 {limit} 個）。請縮短內容或分成幾則訊息傳送。",
    "ja": "メッセージが長すぎます（{length} 文字、上限は {limit} 文字です）。"
    "短くするか、複数のメッセージに分けてお送りください。",
    "ar": "رسالتك طويلة جدًا (عدد الأحرف {length}، والحد الأقصى {limit}). "
    "يُرجى اختصارها أو تقسيمها إلى عدة رسائل.",
    "ru": "Ваше сообщение слишком длинное (символов: {length}, допустимо не более {limit}). "
    "Пожалуйста, сократите его или разделите на несколько сообщений.",
    "tr": "Mesajınız çok uzun ({length} karakter, sınır {limit}). "
    "Lütfen kısaltın veya birkaç mesaja bölün.",
}

EMPTY_REPLIES: Mapping[str, str] = {
    "en": "I can only read text for now. Could you describe it in words?",
    "es": "Por ahora solo puedo leer texto. ¿Puedes describirlo con palabras?",
    "fr": "Pour l'instant, je ne peux lire que du texte. Pouvez-vous le décrire par écrit ?",
    "de": "Ich kann derzeit nur Text lesen. Können Sie es in Worten beschreiben?",
    "pt": "Por enquanto, só consigo ler texto. Você pode descrever isso em palavras?",
    "it": "Per ora posso leggere solo testo. Puoi descriverlo a parole?",
    "nl": "Ik kan voorlopig alleen tekst lezen. Kun je het in woorden beschrijven?",
    "zh-Hans": "我目前只能阅读文字。您能用文字描述一下吗？",
    "zh-Hant": "我目前只能閱讀文字。您能用文字描述一下嗎？",
    "ja": "現在、テキストしか読み取れません。内容を文章でご説明いただけますか？",
    "ar": "لا يمكنني قراءة سوى النصوص حاليًا. هل يمكنك وصف ذلك بالكلمات؟",
    "ru": "Пока я умею читать только текст. Не могли бы вы описать это словами?",
    "tr": "Şimdilik yalnızca metin okuyabiliyorum. Bunu kelimelerle anlatabilir misiniz?",
}

RATE_LIMIT_REPLIES: Mapping[str, str] = {
    "en": "You are sending messages faster than I can answer. Please wait a moment and try again.",
    "es": "Estás enviando mensajes más rápido de lo que puedo responder. Espera un momento e "
    "inténtalo de nuevo.",
    "fr": "Vous envoyez des messages plus vite que je ne peux y répondre. Veuillez patienter "
    "un instant, puis réessayer.",
    "de": "Sie senden Nachrichten schneller, als ich antworten kann. Bitte warten Sie einen "
    "Moment und versuchen Sie es dann erneut.",
    "pt": "Você está enviando mensagens mais rápido do que consigo responder. Aguarde um "
    "momento e tente novamente.",
    "it": "Stai inviando messaggi più velocemente di quanto io riesca a rispondere. Attendi "
    "un momento e riprova.",
    "nl": "Je stuurt sneller berichten dan ik kan beantwoorden. Wacht even en probeer het dan "
    "opnieuw.",
    "zh-Hans": "您发送消息的速度太快，我来不及回复。请稍等片刻再试。",
    "zh-Hant": "您傳送訊息的速度太快，我來不及回覆。請稍候片刻再試。",
    "ja": "メッセージの送信が速すぎて、返信が追いつきません。少し時間をおいてから、"
    "もう一度お試しください。",
    "ar": "أنت ترسل الرسائل أسرع مما أستطيع الرد عليها. يُرجى الانتظار قليلًا ثم المحاولة مرة أخرى.",
    "ru": "Вы отправляете сообщения быстрее, чем я успеваю отвечать. Пожалуйста, подождите "
    "немного и попробуйте снова.",
    "tr": "Mesajları yanıtlayabileceğimden daha hızlı gönderiyorsunuz. Lütfen biraz bekleyip "
    "tekrar deneyin.",
}

# {language} is the chosen language's name in the text's own language when the text is
# in the chosen language (``language_name_in``: "español", "Deutsch", "日本語").
SWITCH_REPLIES: Mapping[str, str] = {
    "en": "Okay, from now on I will answer in {language}.",
    "es": "De acuerdo, a partir de ahora te responderé en {language}.",
    "fr": "D'accord, je vous répondrai désormais en {language}.",
    "de": "Alles klar, ab jetzt antworte ich auf {language}.",
    "pt": "Certo, a partir de agora vou responder em {language}.",
    "it": "D'accordo, d'ora in poi ti risponderò in {language}.",
    "nl": "Oké, vanaf nu antwoord ik in het {language}.",
    "zh-Hans": "好的，从现在起我将用{language}回复您。",
    "zh-Hant": "好的，從現在起我將用{language}回覆您。",
    "ja": "かしこまりました。これからは{language}でお答えします。",
    "ar": "حسنًا، سأجيبك من الآن فصاعدًا باللغة {language}.",
    "ru": "Хорошо, теперь я буду отвечать на этом языке: {language}.",
    "tr": "Tamam, bundan sonra size {language} yanıt vereceğim.",
}

# The example code stays a code ("en"; English's own text shows "es").
SWITCH_UNKNOWN_REPLIES: Mapping[str, str] = {
    "en": "Sorry, I cannot answer in that language. Write {command} and a language, "
    "for example: {command} es",
    "es": "Lo siento, no puedo responder en ese idioma. Escribe {command} y un idioma, "
    "por ejemplo: {command} en",
    "fr": "Désolé, je ne peux pas répondre dans cette langue. Écrivez {command} suivi d'une "
    "langue, par exemple : {command} en",
    "de": "Entschuldigung, in dieser Sprache kann ich nicht antworten. Schreiben Sie "
    "{command} und eine Sprache, zum Beispiel: {command} en",
    "pt": "Desculpe, não consigo responder nesse idioma. Escreva {command} e um idioma, "
    "por exemplo: {command} en",
    "it": "Mi dispiace, non posso rispondere in quella lingua. Scrivi {command} seguito da "
    "una lingua, ad esempio: {command} en",
    "nl": "Sorry, in die taal kan ik niet antwoorden. Typ {command} en een taal, "
    "bijvoorbeeld: {command} en",
    "zh-Hans": "抱歉，我无法使用该语言回复。请输入 {command} 加语言代码，例如：{command} en",
    "zh-Hant": "抱歉，我無法使用該語言回覆。請輸入 {command} 加語言代碼，例如：{command} en",
    "ja": "申し訳ありません。その言語ではお答えできません。{command} と言語を入力してください。"
    "例：{command} en",
    "ar": "عذرًا، لا يمكنني الرد بهذه اللغة. اكتب {command} متبوعًا بلغة، على سبيل المثال: "
    "{command} en",
    "ru": "Извините, я не могу отвечать на этом языке. Напишите {command} и язык, например: "
    "{command} en",
    "tr": "Üzgünüm, bu dilde yanıt veremiyorum. {command} ve ardından bir dil yazın, örneğin: "
    "{command} en",
}

TABLES: Mapping[str, Mapping[str, str]] = {
    "bot.fallback_reply": FALLBACK_REPLIES,
    "bot.busy_reply": BUSY_REPLIES,
    "bot.too_long_reply": TOO_LONG_REPLIES,
    "bot.empty_reply": EMPTY_REPLIES,
    "bot.rate_limit.reply": RATE_LIMIT_REPLIES,
    "language.switch_reply": SWITCH_REPLIES,
    "language.switch_unknown_reply": SWITCH_UNKNOWN_REPLIES,
}

# Languages that write a language's name in lower case inside a sentence.
_LOWER_CASE_NAMES = frozenset({"es", "fr", "pt", "it", "ru"})


def default_text_in(
    configured: str,
    table: Mapping[str, str],
    working: str,
    values: Mapping[str, str] | None = None,
) -> TextIn:
    """The ``TextIn`` of a setting whose built-in default is ``table["en"]`` (see the
    module docstring), with each ``{name}`` of ``values`` filled in.

    Args:
        configured: the setting's value.
        table: its built-in texts per language.
        working: the working language (``bot.working_language``).
        values: placeholder values (str.replace, not str.format: a customized text may
            hold other braces).
    """
    from botkit.language.localized import fallback_key, pick

    def fill(text: str) -> str:
        for name, value in (values or {}).items():
            text = text.replace("{" + name + "}", value)
        return text

    if configured != table["en"]:
        return lambda _customer: (working, fill(configured))
    fallback = fallback_key(table, working)

    def text_in(customer: str | None) -> tuple[str, str]:
        used, text = pick(table, customer, fallback=fallback)
        return used, fill(text)

    return text_in


def in_working_language(configured: str, table: Mapping[str, str], working: str) -> str:
    """The setting's text in the working language (what ``pivot`` mode translates from;
    the English default when the table lacks the working language)."""
    return default_text_in(configured, table, working)(working)[1]


def language_name_in(text_language: str, language: str) -> str:
    """How a text in ``text_language`` names ``language``: its own name when the text is
    in that language ("Deutsch", "español"); an English text names it in English (as
    before); a text in another language names it in the language itself ("auf 한국어",
    not "auf Korean": no table of every language's name in every other language here,
    and the customer reads their own language's name)."""
    info = language_info(language)
    if info is None or primary_subtag(text_language) == "en":
        return english_name(language)
    if not same_language(text_language, language):
        return info.native
    lower = primary_subtag(language) in _LOWER_CASE_NAMES
    return info.native.lower() if lower else info.native


def set_default_reply(
    ctx: Context,
    configured: str,
    table: Mapping[str, str],
    *,
    source: str,
    values: Mapping[str, str] | None = None,
) -> Reply:
    """Answer with a built-in text (see the module docstring).

    After language detection this is ``set_localized_reply``. Before it (``ctx.language``
    unset: the rate-limit, too-long and empty notices, a failure loading the
    conversation) the customer's language is the conversation's, else the contact's; a
    text in it goes out labelled so, with its working-language version as
    ``working_text`` unless it is that (so ``NoticeTranslationMiddleware`` leaves it).
    Anything else is the working-language text, unlabelled as before: ``pivot`` mode
    translates it there.
    With ``language.mode = "off"`` it is always the working-language text.
    """
    from botkit.language.localized import set_localized_reply

    working = ctx.settings.bot.working_language
    text_in = default_text_in(configured, table, working, values)
    if ctx.language is not None:
        return set_localized_reply(ctx, text_in, source=source)
    customer = ctx.conversation.language
    if customer is None and ctx.contact is not None:
        customer = ctx.contact.language
    if customer is not None and ctx.settings.language.mode != "off":
        used, text = text_in(customer)
        if same_language(used, customer):
            reply = ctx.set_reply(text, source=source)
            reply.language = used
            if not same_language(used, working):
                reply.working_text = text_in(working)[1]
            return reply
    return ctx.set_reply(text_in(working)[1], source=source)
