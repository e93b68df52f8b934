"""Busy and fallback replies that replace a reply while it streams (review 3, finding 4).

Customized ones are in the working language. In ``pivot`` mode they reach the customer
translated, from a cache filled in the background (never by a translator call at the
moment of the overload); without a translation they go out in the working language,
labelled so. The built-in ones go out in the customer's language when they have it, in
either mode, with no translator. In every case the stored reply's language says what
the customer got and ``working_text`` keeps the notice."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest
from core_helpers import RecordingConnector

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import BackendBusyError, TranslationError
from botkit.events import Contact, InboundMessage
from botkit.language import Glossary, split_sentences
from botkit.language.default_texts import BUSY_REPLIES, FALLBACK_REPLIES
from botkit.language.substitutes import SubstituteTexts
from botkit.language.translate import TextTranslator
from botkit.store import StoredMessage
from botkit.testing.translator import MarkingTranslator

MakeSettings = Callable[..., Settings]
_keys = itertools.count()

ES = "Hola, quiero saber dónde está mi pedido ORD-2024-0042, por favor."
ES_FOLLOW_UP = "¿Y cuándo llegará entonces mi paquete?"


def msg(text: str, conversation: str = "c1") -> InboundMessage:
    contact = Contact(channel="test", external_id="u1")
    return InboundMessage("test", conversation, contact, text, f"b{next(_keys)}")


class Overloaded(EchoBackend):
    """Echo, or ``fail`` raised once it is set (after one sentence with ``midway``)."""

    fail: Exception | None = None
    midway = False

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        if self.fail is not None:
            if self.midway:
                yield "Your order ships today. "
                yield "And"
            raise self.fail
        async for delta in super().generate(request):
            yield delta


class GatedTranslator(MarkingTranslator):
    """Translates the customer's texts at once; the notices only once ``gate`` is set
    (a translator overloaded exactly when the notices are wanted)."""

    def __init__(self, notices: Sequence[str]) -> None:
        super().__init__()
        self.notices = tuple(notices)
        self.gate = asyncio.Event()

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if any(t in n for t in texts for n in self.notices):
            await self.gate.wait()
        return await super().translate(texts, source, target)


@asynccontextmanager
async def running(
    settings: Settings, translator: MarkingTranslator | None, backend: Overloaded
) -> AsyncIterator[tuple[Bot, RecordingConnector]]:
    async with Bot(settings, translator=translator, backend=backend) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        yield bot, rec


async def ask(bot: Bot, rec: RecordingConnector, message: InboundMessage) -> str:
    before = len(rec.replies)
    await bot.submit(message)
    return (await rec.wait_for(before + 1))[before].text


async def last_stored(bot: Bot) -> StoredMessage:
    assert await bot.drain(30)
    return (await bot.store.messages_after("test", "c1", 0, 100))[-1]


# The operator's own notices: the built-in ones come in the customer's language without
# a translator (tests at the end).
CUSTOM = {
    "busy_reply": "Lots of messages right now. Please try again in a minute.",
    "fallback_reply": "Something broke on our side. Please try again in a moment.",
}


def settings_for(
    make_settings: MakeSettings, bot: dict[str, str] | None = None, **language: object
) -> Settings:
    return make_settings(
        bot=CUSTOM if bot is None else bot,
        language={"detector": {"kind": "langdetect", "processes": 0}, **language},
    )


async def test_busy_reply_is_translated_from_the_cache(make_settings: MakeSettings) -> None:
    settings = settings_for(make_settings)
    busy = settings.bot.busy_reply
    backend, translator = Overloaded(), MarkingTranslator()
    async with running(settings, translator, backend) as (bot, rec):
        assert (await ask(bot, rec, msg(ES))).startswith("es(")
        substitutes = bot._language.substitutes
        assert substitutes is not None
        await substitutes.wait()  # warmed when the conversation's language was seen
        calls = len(translator.calls)
        backend.fail = BackendBusyError("queue timeout")
        reply = await ask(bot, rec, msg(ES_FOLLOW_UP))
        stored = await last_stored(bot)
    expected = "".join(
        translator.mark(s.strip(), "es") + s[len(s.rstrip()) :] for s in split_sentences(busy)
    )
    assert reply == expected
    assert rec.replies[-1].language == "es"
    assert (stored.text, stored.language, stored.working_text) == (reply, "es", busy)
    # Only the follow-up went through the translator: the notice came from the cache.
    assert [c.target for c in translator.calls[calls:]] == ["en"]


async def test_busy_reply_without_a_translation_is_labelled_working_language(
    make_settings: MakeSettings,
) -> None:
    settings = settings_for(make_settings)
    busy = settings.bot.busy_reply
    backend = Overloaded()
    translator = GatedTranslator([busy, settings.bot.fallback_reply])
    async with running(settings, translator, backend) as (bot, rec):
        assert (await ask(bot, rec, msg(ES))).startswith("es(")
        backend.fail = BackendBusyError("queue timeout")
        # Not waiting for the (stuck) translator: the reply comes while its gate is shut
        # (waiting for it, the reply would never come).
        reply = await ask(bot, rec, msg(ES_FOLLOW_UP))
        assert not translator.gate.is_set()
        stored = await last_stored(bot)
        translator.gate.set()
    assert reply == busy
    assert rec.replies[-1].language == "en"
    assert (stored.language, stored.working_text) == ("en", busy)


async def test_mid_stream_fallback_is_appended_translated(make_settings: MakeSettings) -> None:
    settings = settings_for(make_settings)
    fallback = settings.bot.fallback_reply
    backend = Overloaded()
    async with running(settings, MarkingTranslator(), backend) as (bot, rec):
        assert (await ask(bot, rec, msg(ES))).startswith("es(")
        substitutes = bot._language.substitutes
        assert substitutes is not None
        await substitutes.wait()
        backend.fail, backend.midway = TranslationError("model crashed"), True
        reply = await ask(bot, rec, msg(ES_FOLLOW_UP))
        stored = await last_stored(bot)
    assert reply.startswith("es(Your order ships today.) \n\nes(")
    assert "en(" not in reply and len(reply.split("\n\n")) == 2
    assert rec.replies[-1].language == "es"
    assert stored.working_text == f"Your order ships today. \n\n{fallback}"


async def test_native_mode_busy_reply_is_labelled_working_language(
    make_settings: MakeSettings,
) -> None:
    settings = settings_for(make_settings, mode="native")
    backend = Overloaded()
    async with running(settings, None, backend) as (bot, rec):
        await ask(bot, rec, msg(ES))
        assert rec.replies[-1].language == "es"
        backend.fail = BackendBusyError("busy")
        assert await ask(bot, rec, msg(ES_FOLLOW_UP)) == settings.bot.busy_reply
        stored = await last_stored(bot)
    assert rec.replies[-1].language == "en"
    assert (stored.language, stored.working_text) == ("en", None)


async def test_cache_is_bounded_retries_failures_later_and_closes() -> None:
    translator = MarkingTranslator()
    cache = SubstituteTexts(
        TextTranslator(translator, Glossary()), "en", ["Busy. Try later.", "Oops."],
        max_languages=2,
    )  # fmt: skip
    assert cache.lookup("es", "Oops.") is None  # nothing before a warm-up
    assert cache.lookup("en-GB", "Oops.") == "Oops."  # the working language as written
    for language in ("es", "de", "fr"):
        cache.warm(language)
        await cache.wait()
    assert len(translator.calls) == 3  # one batch per language, both texts in it
    assert translator.calls[0].texts == ("Busy.", "Try later.", "Oops.")
    assert cache.lookup("es", "Oops.") is None  # evicted: least recently used
    assert cache.lookup("fr", "Busy. Try later.") == "fr(Busy.) fr(Try later.)"
    cache.warm("fr")  # cached: no new call
    assert len(translator.calls) == 3

    translator.fail_with = TranslationError("down")
    cache.warm("ja")
    await cache.wait()
    cache.warm("ja")  # failed just now: not asked again at once
    assert len(translator.calls) == 4 and cache.lookup("ja", "Oops.") is None

    translator.fail_with, translator.delay = None, 600.0
    cache.warm("it")
    await asyncio.sleep(0)
    await asyncio.wait_for(cache.close(), 30)  # cancels what is in flight (not 600 s)
    cache.warm("pt")
    assert cache.lookup("it", "Oops.") is None and len(translator.calls) == 5


# The built-in notices (``botkit.language.default_texts``), kept by the deployment.
JA = "こんにちは。先週注文した商品がまだ届いていません。いつ届きますか？"  # noqa: RUF001
JA_FOLLOW_UP = "配送状況を確認していただけますか？よろしくお願いします。"  # noqa: RUF001
AR = "مرحبًا، طلبت منتجًا الأسبوع الماضي ولم يصل بعد. متى سيصل؟"
AR_FOLLOW_UP = "هل يمكنك التحقق من حالة الشحن من فضلك؟ شكرًا جزيلًا لك."
KO = "안녕하세요. 지난주에 주문한 상품이 아직 도착하지 않았습니다. 언제 도착하나요?"
KO_FOLLOW_UP = "배송 상태를 확인해 주실 수 있나요? 감사합니다."


async def test_pivot_mode_built_in_busy_reply_needs_no_translator(
    make_settings: MakeSettings,
) -> None:
    # The translator is stuck on the notices, as in the test above: the built-in Spanish
    # text goes out anyway, not re-translated, with the English one kept.
    settings = settings_for(make_settings, bot={})
    english = settings.bot.busy_reply
    backend = Overloaded()
    translator = GatedTranslator([english, settings.bot.fallback_reply])
    async with running(settings, translator, backend) as (bot, rec):
        assert (await ask(bot, rec, msg(ES))).startswith("es(")
        backend.fail = BackendBusyError("queue timeout")
        reply = await ask(bot, rec, msg(ES_FOLLOW_UP))
        stored = await last_stored(bot)
        translator.gate.set()
    assert reply == BUSY_REPLIES["es"]
    assert rec.replies[-1].language == "es"
    assert (stored.language, stored.working_text) == ("es", english)


@pytest.mark.parametrize(
    ("first", "kept", "translated"),
    [
        # Built-in texts in the customer's language: nothing to translate ahead.
        ((ES, JA, AR), {}, ()),
        # A customized busy reply is translated; the kept fallback is not.
        ((ES, JA, AR), {"busy_reply": CUSTOM["busy_reply"]}, ("busy_reply",)),
        # Korean has no built-in text: both are translated from the English ones.
        ((KO,), {}, ("busy_reply", "fallback_reply")),
    ],
    ids=["built-in", "one-customized", "no-built-in"],
)
async def test_pivot_mode_translates_ahead_only_the_notices_without_a_built_in_text(
    make_settings: MakeSettings,
    first: tuple[str, ...],
    kept: dict[str, str],
    translated: tuple[str, ...],
) -> None:
    settings = settings_for(make_settings, bot=kept)
    notices = {"busy_reply": settings.bot.busy_reply, "fallback_reply": settings.bot.fallback_reply}
    translator = MarkingTranslator()
    async with running(settings, translator, Overloaded()) as (bot, rec):
        for i, text in enumerate(first):
            await ask(bot, rec, msg(text, conversation=f"c{i}"))
        substitutes = bot._language.substitutes
        assert substitutes is not None
        await substitutes.wait()

    def sentences(text: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in split_sentences(text))

    ours = {s for text in notices.values() for s in sentences(text)}
    asked = [c.texts for c in translator.calls if set(c.texts) & ours]
    wanted = tuple(s for name in translated for s in sentences(notices[name]))
    # One batch per customer language, of the notices the delivery would look up.
    assert asked == ([wanted] * len(first) if translated else [])


async def test_native_mode_built_in_busy_reply_is_in_the_customers_language(
    make_settings: MakeSettings,
) -> None:
    settings = settings_for(make_settings, bot={}, mode="native")
    backend = Overloaded()
    async with running(settings, None, backend) as (bot, rec):
        await ask(bot, rec, msg(JA))
        assert rec.replies[-1].language == "ja"
        backend.fail = BackendBusyError("busy")
        assert await ask(bot, rec, msg(JA_FOLLOW_UP)) == BUSY_REPLIES["ja"]
        stored = await last_stored(bot)
    assert rec.replies[-1].language == "ja"
    assert (stored.text, stored.language) == (BUSY_REPLIES["ja"], "ja")


async def test_native_mode_built_in_fallback_is_appended_in_the_customers_language(
    make_settings: MakeSettings,
) -> None:
    settings = settings_for(make_settings, bot={}, mode="native")
    backend = Overloaded()
    async with running(settings, None, backend) as (bot, rec):
        await ask(bot, rec, msg(AR))
        assert rec.replies[-1].language == "ar"
        backend.fail, backend.midway = RuntimeError("model crashed"), True
        reply = await ask(bot, rec, msg(AR_FOLLOW_UP))
    assert reply == f"Your order ships today. And\n\n{FALLBACK_REPLIES['ar']}"
    assert rec.replies[-1].language == "ar"


@pytest.mark.parametrize(
    ("texts", "language"), [((KO, KO_FOLLOW_UP), "de"), ((JA, JA_FOLLOW_UP), "ja")]
)
async def test_a_german_deployment_keeping_the_default_answers_in_german(
    make_settings: MakeSettings, texts: tuple[str, str], language: str
) -> None:
    # Working language German, defaults kept: a customer whose language has no built-in
    # text (Korean) gets the German one, labelled German; a Japanese one gets Japanese.
    settings = make_settings(
        bot={"working_language": "de"},
        language={"mode": "native", "detector": {"kind": "langdetect", "processes": 0}},
    )
    backend = Overloaded()
    async with running(settings, None, backend) as (bot, rec):
        await ask(bot, rec, msg(texts[0]))
        backend.fail = BackendBusyError("busy")
        reply = await ask(bot, rec, msg(texts[1]))
    assert (reply, rec.replies[-1].language) == (BUSY_REPLIES[language], language)
