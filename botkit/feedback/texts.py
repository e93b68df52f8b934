"""What the feedback plugin tells the customer, per language, English as fallback.

The tables have the web widget's languages (``botkit.language.default_texts.LANGUAGES``).

A deployment adds or overrides languages through ``[plugins.feedback]``'s tables.
"""

# ruff: noqa: RUF001 - the texts use their languages' own letters and punctuation

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
    "nl": "Bedankt voor je feedback!",
    "zh-Hans": "感谢您的反馈！",
    "zh-Hant": "感謝您的回饋！",
    "ja": "フィードバックをありがとうございます。",
    "ar": "شكرًا على ملاحظاتك!",
    "ru": "Спасибо за ваш отзыв!",
    "tr": "Geri bildiriminiz için teşekkürler!",
}

SORRY: Mapping[str, str] = {
    "en": "Sorry that didn't help. Could you tell me more, or ask in other words?",
    "es": "Siento que no te haya ayudado. ¿Puedes contarme más o preguntarlo de otra forma?",
    "fr": "Désolé que cela ne vous ait pas aidé. Pouvez-vous m'en dire plus ou reformuler "
    "votre question ?",
    "de": "Schade, dass das nicht geholfen hat. Können Sie mehr erzählen oder anders fragen?",
    "pt": "Lamento que não tenha ajudado. Pode contar-me mais ou perguntar de outra forma?",
    "it": "Mi dispiace che non sia stato d'aiuto. Puoi dirmi di più o chiederlo in altre parole?",
    "nl": "Jammer dat dit niet heeft geholpen. Kun je me meer vertellen, of je vraag anders "
    "stellen?",
    "zh-Hans": "很抱歉没能帮到您。能再详细说明一下，或者换种方式提问吗？",
    "zh-Hant": "很抱歉沒能幫上忙。可以再詳細說明一下，或換個方式提問嗎？",
    "ja": "お役に立てず申し訳ありません。もう少し詳しく教えていただくか、別の言葉で"
    "ご質問いただけますか？",
    "ar": "عذرًا لأن ذلك لم يكن مفيدًا. هل يمكنك إخباري بالمزيد، أو طرح سؤالك بطريقة أخرى؟",
    "ru": "Жаль, что это не помогло. Не могли бы вы рассказать подробнее или задать вопрос иначе?",
    "tr": "Yardımcı olamadığım için üzgünüm. Biraz daha ayrıntı verebilir veya sorunuzu başka "
    "bir şekilde sorabilir misiniz?",
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
    "nl": "Jammer dat dit niet heeft geholpen. Een collega neemt het over en reageert hier "
    "zo snel mogelijk.",
    "zh-Hans": "很抱歉没能帮到您。我们的同事将接手，并尽快在这里回复您。",
    "zh-Hant": "很抱歉沒能幫上忙。我們的同事將接手，並盡快在這裡回覆您。",
    "ja": "お役に立てず申し訳ありません。担当者が引き継ぎ、できるだけ早くこちらで"
    "ご返信いたします。",
    "ar": "عذرًا لأن ذلك لم يكن مفيدًا. سيتولى أحد زملائنا المحادثة ويرد عليك هنا في أقرب وقت ممكن.",
    "ru": "Жаль, что это не помогло. Наш сотрудник продолжит разговор и ответит вам здесь как "
    "можно скорее.",
    "tr": "Yardımcı olamadığım için üzgünüm. Bir ekip arkadaşımız görüşmeyi devralacak ve en "
    "kısa sürede buradan yanıt verecek.",
}
