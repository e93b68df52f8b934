"""The built-in customer-facing texts in the web widget's languages
(``botkit.language.default_texts``): every table speaks the same languages with the same
placeholders; a customer gets a kept default in their language, labelled so, through a
real bot (native mode); an operator's own text is used as written; pivot mode translates
an operator's text and leaves a built-in one alone."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from core_helpers import RecordingConnector, message

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.config import Settings
from botkit.config.settings import BotSettings, RateLimitSettings
from botkit.errors import MessageRejectedError, NotAcceptingError
from botkit.events import OutboundReply
from botkit.feedback import texts as feedback_texts
from botkit.handoff import texts as handoff_texts
from botkit.language.default_texts import (
    BUSY_REPLIES,
    EMPTY_REPLIES,
    FALLBACK_REPLIES,
    LANGUAGES,
    RATE_LIMIT_REPLIES,
    SWITCH_REPLIES,
    SWITCH_UNKNOWN_REPLIES,
    TABLES,
    TOO_LONG_REPLIES,
    default_text_in,
    in_working_language,
    language_name_in,
)
from botkit.language.localized import pick
from botkit.language.settings import LanguageSettings
from botkit.testing.translator import MarkingTranslator

MakeSettings = Callable[..., Settings]
_keys = itertools.count()

ALL_TABLES: dict[str, Mapping[str, str]] = {
    **TABLES,
    "handoff.HANDOFF_REPLIES": handoff_texts.HANDOFF_REPLIES,
    "handoff.RETURN_HINTS": handoff_texts.RETURN_HINTS,
    "handoff.RETURN_REPLIES": handoff_texts.RETURN_REPLIES,
    "handoff.OFFLINE_HANDOFF_REPLIES": handoff_texts.OFFLINE_HANDOFF_REPLIES,
    "handoff.OFFLINE_BOT_REPLIES": handoff_texts.OFFLINE_BOT_REPLIES,
    "feedback.THANKS": feedback_texts.THANKS,
    "feedback.SORRY": feedback_texts.SORRY,
    "feedback.HANDED_OFF": feedback_texts.HANDED_OFF,
}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
WIDGET = "connectors/web/static/widget.js"


# --- the tables -------------------------------------------------------------------------


def test_the_languages_are_the_widgets() -> None:
    with open(WIDGET, encoding="utf-8") as f:
        widget = f.read()
    table = widget[widget.index("var TEXTS") : widget.index("end of TEXTS")]
    keys = re.findall(r'^    "?([A-Za-z-]+)"?: \{$', table, flags=re.MULTILINE)
    assert sorted(keys) == sorted(LANGUAGES)


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
def test_every_table_has_every_language_and_the_same_placeholders(name: str) -> None:
    table = ALL_TABLES[name]
    assert list(table) == list(LANGUAGES)
    english = sorted(_PLACEHOLDER.findall(table["en"]))
    for language, text in table.items():
        assert sorted(_PLACEHOLDER.findall(text)) == english, (name, language)
        assert text == text.strip() and "  " not in text, (name, language)


def test_weekday_names_for_every_language() -> None:
    assert list(handoff_texts.WEEKDAYS) == list(LANGUAGES)
    for language, days in handoff_texts.WEEKDAYS.items():
        assert len(days) == 7 and len(set(days)) == 7, language


def test_the_settings_default_to_the_english_texts() -> None:
    bot, language = BotSettings(), LanguageSettings()
    assert bot.fallback_reply == FALLBACK_REPLIES["en"]
    assert bot.busy_reply == BUSY_REPLIES["en"]
    assert bot.too_long_reply == TOO_LONG_REPLIES["en"]
    assert bot.empty_reply == EMPTY_REPLIES["en"]
    assert RateLimitSettings().reply == RATE_LIMIT_REPLIES["en"]
    assert language.switch_reply == SWITCH_REPLIES["en"]
    assert language.switch_unknown_reply == SWITCH_UNKNOWN_REPLIES["en"]


# --- choosing a text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "key"),
    [
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-Hans-HK", "zh-Hans"),
        ("zh_cn", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-MO", "zh-Hant"),
        ("zh-Hant-CN", "zh-Hant"),
        ("pt-BR", "pt"),
        ("ar-EG", "ar"),
        ("ko", "en"),
        (None, "en"),
    ],
)
def test_pick_maps_regions_and_scripts(customer: str | None, key: str) -> None:
    assert pick(FALLBACK_REPLIES, customer) == (key, FALLBACK_REPLIES[key])


def test_pick_keeps_a_script_and_drops_the_region() -> None:
    table = {"en": "Hi", "sr": "Здраво", "sr-Latn": "Zdravo"}
    assert pick(table, "sr-Latn-RS") == ("sr-Latn", "Zdravo")
    assert pick(table, "sr-RS") == ("sr", "Здраво")


def test_a_kept_default_is_in_the_customers_language_else_the_working_ones() -> None:
    english = TOO_LONG_REPLIES["en"]
    values = {"length": "5000", "limit": "4096"}
    text_in = default_text_in(english, TOO_LONG_REPLIES, "de", values)
    assert text_in("ja") == ("ja", "メッセージが長すぎます（5000 文字、上限は 4096 文字です）。"  # noqa: RUF001
                             "短くするか、複数のメッセージに分けてお送りください。")  # fmt: skip
    assert text_in("ko")[0] == "de" and "(5000 Zeichen, erlaubt sind 4096)" in text_in("ko")[1]
    assert in_working_language(english, TOO_LONG_REPLIES, "de") == TOO_LONG_REPLIES["de"]
    # A working language no table has: English, as the operator's defaults say.
    assert default_text_in(english, TOO_LONG_REPLIES, "ko")("sw")[0] == "en"


def test_a_customized_text_is_used_as_written_in_the_working_language() -> None:
    text_in = default_text_in("Zu lang: {length}/{limit} {x}", TOO_LONG_REPLIES, "de",
                              {"length": "9", "limit": "5"})  # fmt: skip
    assert text_in("ja") == ("de", "Zu lang: 9/5 {x}")


def test_language_names_in_their_own_words() -> None:
    assert language_name_in("es", "es-MX") == "español"
    assert language_name_in("de", "de") == "Deutsch"
    assert language_name_in("zh-Hant", "zh-TW") == "繁體中文"
    assert language_name_in("en", "ja") == "Japanese"
    # A German text for a language without a German name here: the language's own
    # name, never the English one in a German sentence ("auf Korean").
    assert language_name_in("de", "ko") == "한국어"


# --- through a bot --------------------------------------------------------------------


class FailingBackend(EchoBackend):
    """Fails when asked for a reply (the pipeline answers with the fallback reply)."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        raise RuntimeError("the model is down")


def native(**bot: Any) -> dict[str, Any]:
    # The channel's hint is the customer's language (no detector: deterministic).
    return {
        "bot": bot,
        "language": {"mode": "native", "detector": {"kind": "none"}},
    }


async def answers(
    settings: Settings,
    texts: list[str],
    hint: str,
    *,
    backend: EchoBackend | None = None,
    translator: MarkingTranslator | None = None,
    user: str = "u1",
) -> list[OutboundReply]:
    async with Bot(settings, backend=backend, translator=translator) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        for n, text in enumerate(texts, 1):
            key = f"d{next(_keys)}"
            await bot.submit(message(text, key, conversation=user, user=user, language_hint=hint))
            await rec.wait_for(n)
        assert await bot.drain(30)
        replies: list[OutboundReply] = rec.replies
        return replies


CUSTOMERS = [("ja", "ja"), ("ar", "ar"), ("zh-TW", "zh-Hant")]


@pytest.mark.parametrize(("hint", "key"), CUSTOMERS)
async def test_fallback_reply_in_the_customers_language(
    make_settings: MakeSettings, hint: str, key: str
) -> None:
    settings = make_settings(**native())
    (reply,) = await answers(settings, ["hello?"], hint, backend=FailingBackend())
    assert (reply.text, reply.language) == (FALLBACK_REPLIES[key], key)


@pytest.mark.parametrize(("hint", "key"), CUSTOMERS)
async def test_too_long_reply_in_the_customers_language(
    make_settings: MakeSettings, hint: str, key: str
) -> None:
    settings = make_settings(**native(max_message_chars=10))
    (reply,) = await answers(settings, ["x" * 25], hint)
    expected = TOO_LONG_REPLIES[key].replace("{length}", "25").replace("{limit}", "10")
    assert (reply.text, reply.language) == (expected, key)


@pytest.mark.parametrize(("hint", "key"), CUSTOMERS)
async def test_empty_reply_in_the_customers_language(
    make_settings: MakeSettings, hint: str, key: str
) -> None:
    settings = make_settings(**native())
    (reply,) = await answers(settings, ["   "], hint)
    assert (reply.text, reply.language) == (EMPTY_REPLIES[key], key)


@pytest.mark.parametrize(("hint", "key"), CUSTOMERS)
async def test_rate_limit_reply_in_the_customers_language(
    make_settings: MakeSettings, hint: str, key: str
) -> None:
    settings = make_settings(**native(rate_limit={"messages": 1, "window_seconds": 3600}))
    first, second = await answers(settings, ["hello", "hello again"], hint)
    assert first.text != second.text
    assert (second.text, second.language) == (RATE_LIMIT_REPLIES[key], key)


async def test_a_customized_text_is_used_verbatim(make_settings: MakeSettings) -> None:
    settings = make_settings(**native(fallback_reply="Oops, our side. Try again soon."))
    (reply,) = await answers(settings, ["hello?"], "ja", backend=FailingBackend())
    assert (reply.text, reply.language) == ("Oops, our side. Try again soon.", "en")


async def test_a_german_deployment_that_kept_the_defaults(make_settings: MakeSettings) -> None:
    # German customers get German, a customer whose language no table has gets the
    # working language's text (not English). Before detection (a too-long message) that
    # is unlabelled, as any working-language notice there: pivot mode translates those.
    settings = make_settings(**native(working_language="de", max_message_chars=10))
    (german,) = await answers(settings, ["x" * 25], "de-AT", user="u-de")
    (korean,) = await answers(settings, ["y" * 25], "ko", user="u-ko")
    expected = TOO_LONG_REPLIES["de"].replace("{length}", "25").replace("{limit}", "10")
    assert (german.text, german.language) == (expected, "de")
    assert (korean.text, korean.language) == (expected, None)
    # After detection (a failure of the model) it is labelled German.
    (fallback,) = await answers(settings, ["hi"], "ko", backend=FailingBackend(), user="u-ko2")
    assert (fallback.text, fallback.language) == (FALLBACK_REPLIES["de"], "de")


def pivot(**bot: Any) -> dict[str, Any]:
    return {
        "bot": bot,
        "language": {"mode": "pivot", "translator": {"kind": "llm"}, "detector": {"kind": "none"}},
    }


async def test_pivot_mode_does_not_translate_a_built_in_text_again(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(**pivot(max_message_chars=10))
    translator = MarkingTranslator()
    (reply,) = await answers(settings, ["x" * 25], "ja", translator=translator)
    expected = TOO_LONG_REPLIES["ja"].replace("{length}", "25").replace("{limit}", "10")
    assert (reply.text, reply.language) == (expected, "ja")
    assert translator.calls == []


async def test_pivot_mode_translates_a_customized_text(make_settings: MakeSettings) -> None:
    settings = make_settings(**pivot(max_message_chars=10, too_long_reply="Too long: {length}."))
    (reply,) = await answers(settings, ["x" * 25], "ja", translator=MarkingTranslator())
    assert (reply.text, reply.language) == ("ja(Too long: 25.)", "ja")


async def test_pivot_mode_fallback_is_built_in_or_translated(make_settings: MakeSettings) -> None:
    # Arabic has a built-in text; Korean has not: the English one is translated.
    settings = make_settings(**pivot())
    (arabic,) = await answers(settings, ["hi"], "ar", backend=FailingBackend(),
                              translator=MarkingTranslator())  # fmt: skip
    (korean,) = await answers(settings, ["hi"], "ko", backend=FailingBackend(),
                              translator=MarkingTranslator(), user="u-ko")  # fmt: skip
    assert (arabic.text, arabic.language) == (FALLBACK_REPLIES["ar"], "ar")
    assert korean.language == "ko" and korean.text.startswith("ko(Sorry, something went wrong")


async def test_refusals_before_the_language_is_known_are_in_the_working_language(
    make_settings: MakeSettings,
) -> None:
    # A message the bot cannot take (closed, or ids no database holds) is refused with a
    # text for the channel to show: a German deployment that kept the defaults says it
    # in German.
    settings = make_settings(bot={"working_language": "de"})
    bot = Bot(settings)
    async with bot:
        with pytest.raises(MessageRejectedError) as bad:
            await bot.submit(message("hi", "k\x00"))
    with pytest.raises(NotAcceptingError) as closed:
        await bot.submit(message("hi", "k1"))
    assert bad.value.user_reply == FALLBACK_REPLIES["de"]
    assert closed.value.user_reply == BUSY_REPLIES["de"]
