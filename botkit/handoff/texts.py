"""What the hand-off plugin tells the customer, per language, with English as fallback.

The tables have the web widget's languages (``botkit.language.default_texts.LANGUAGES``);
a deployment adds or overrides languages through ``replies``/``return_replies`` in
``[plugins.handoff]``.
"""

# ruff: noqa: RUF001 - the texts use their languages' own letters and punctuation

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
    "nl": "Bedankt! Een collega neemt het over en reageert hier zo snel mogelijk.",
    "zh-Hans": "谢谢！我们的同事将接手，并尽快在这里回复您。",
    "zh-Hant": "謝謝！我們的同事將接手，並盡快在這裡回覆您。",
    "ja": "ありがとうございます。担当者が引き継ぎ、できるだけ早くこちらでご返信いたします。",
    "ar": "شكرًا! سيتولى أحد زملائنا المحادثة ويرد عليك هنا في أقرب وقت ممكن.",
    "ru": "Спасибо! Наш сотрудник продолжит разговор и ответит вам здесь как можно скорее.",
    "tr": "Teşekkürler! Bir ekip arkadaşımız görüşmeyi devralacak ve en kısa sürede buradan "
    "yanıt verecek.",
}

# Appended to the hand-off reply when a return command is configured ({command}).
RETURN_HINTS: Mapping[str, str] = {
    "en": "Send {command} to talk to the bot again.",
    "es": "Envía {command} para volver a hablar con el bot.",
    "fr": "Envoyez {command} pour reparler au bot.",
    "de": "Senden Sie {command}, um wieder mit dem Bot zu sprechen.",
    "pt": "Envie {command} para voltar a falar com o bot.",
    "it": "Invia {command} per parlare di nuovo con il bot.",
    "nl": "Stuur {command} om weer met de bot te praten.",
    "zh-Hans": "发送 {command} 即可重新与机器人对话。",
    "zh-Hant": "傳送 {command} 即可重新與機器人對話。",
    "ja": "ボットとの会話に戻るには {command} と送信してください。",
    "ar": "أرسل {command} للعودة إلى التحدث مع روبوت المحادثة.",
    "ru": "Отправьте {command}, чтобы снова общаться с ботом.",
    "tr": "Bot ile tekrar konuşmak için {command} gönderin.",
}

RETURN_REPLIES: Mapping[str, str] = {
    "en": "You're talking to the bot again. How can I help?",
    "es": "Vuelves a hablar con el bot. ¿En qué puedo ayudarte?",
    "fr": "Vous parlez de nouveau au bot. Comment puis-je vous aider ?",
    "de": "Sie sprechen wieder mit dem Bot. Wie kann ich helfen?",
    "pt": "Você está falando com o bot novamente. Como posso ajudar?",
    "it": "Stai di nuovo parlando con il bot. Come posso aiutarti?",
    "nl": "Je praat weer met de bot. Waarmee kan ik je helpen?",
    "zh-Hans": "您已重新与机器人对话。请问有什么可以帮您？",
    "zh-Hant": "您已重新與機器人對話。請問有什麼可以幫您的嗎？",
    "ja": "ボットとの会話に戻りました。どのようなご用件でしょうか？",
    "ar": "أنت تتحدث مع روبوت المحادثة مرة أخرى. كيف يمكنني مساعدتك؟",
    "ru": "Вы снова общаетесь с ботом. Чем могу помочь?",
    "tr": "Yeniden bot ile konuşuyorsunuz. Size nasıl yardımcı olabilirim?",
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
    "nl": "Bedankt! Ons team is er op dit moment niet. Een collega reageert hier vanaf {opens}.",
    "zh-Hans": "谢谢！我们的团队目前不在线。同事将从 {opens} 起在这里回复您。",
    "zh-Hant": "謝謝！我們的團隊目前不在線上。同事將從 {opens} 起在這裡回覆您。",
    "ja": "ありがとうございます。ただいま担当チームは不在です。{opens} 以降に担当者がこちらで"
    "ご返信いたします。",
    "ar": "شكرًا! فريقنا غير متاح حاليًا. سيرد عليك أحد زملائنا هنا ابتداءً من {opens}.",
    # The time after a colon: "from" + a weekday would need the genitive case.
    "ru": "Спасибо! Сейчас наша команда не на связи. Сотрудник ответит вам здесь, когда мы "
    "снова начнём работу: {opens}.",
    "tr": "Teşekkürler! Ekibimiz şu anda müsait değil. Bir ekip arkadaşımız {opens} "
    "itibarıyla buradan yanıt verecek.",
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
    "nl": "Ons team is er op dit moment niet en is terug vanaf {opens}. Tot die tijd help "
    "ik je graag waar ik kan.",
    "zh-Hans": "我们的团队目前不在线，将于 {opens} 起恢复服务。"
    "在此之前，我很乐意尽力为您提供帮助。",
    "zh-Hant": "我們的團隊目前不在線上，將於 {opens} 起恢復服務。"
    "在此之前，我很樂意盡力為您提供協助。",
    "ja": "ただいま担当チームは不在で、{opens} から対応を再開します。それまでは、私ができる限り"
    "お手伝いいたします。",
    "ar": "فريقنا غير متاح حاليًا وسيعود ابتداءً من {opens}. حتى ذلك الحين، يسعدني مساعدتك "
    "قدر استطاعتي.",
    "ru": "Сейчас наша команда не на связи. Мы снова будем на месте: {opens}. А пока я с "
    "радостью помогу, чем смогу.",
    "tr": "Ekibimiz şu anda müsait değil ve {opens} itibarıyla geri dönecek. O zamana kadar "
    "elimden geldiğince yardımcı olmaktan memnuniyet duyarım.",
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
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "zh-Hans": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "zh-Hant": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "ja": ("月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日", "日曜日"),
    "ar": ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
    "tr": ("Pazartesi", "Salı", "Çarşamba", "Perşembe", "Cuma", "Cumartesi", "Pazar"),
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
