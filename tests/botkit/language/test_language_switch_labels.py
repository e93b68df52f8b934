"""The switch command's replies carry the language they are written in (audit:
multilingual, finding 6): in native mode customized texts are in the working language,
and were labelled with the customer's language (a widget read English out in a German
voice); in pivot mode they are translated into the customer's language. The built-in
texts come in the customer's language, labelled so, and pivot mode leaves them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Contact, InboundMessage
from botkit.testing.translator import MarkingTranslator

MakeSettings = Callable[..., Settings]
_keys = itertools.count()
ES = "Hola, quisiera saber dónde está mi pedido. Todavía no ha llegado."


async def replies(settings: Settings, *texts: str, pivot: bool) -> list[tuple[str, str | None]]:
    contact = Contact(channel="test", external_id="u-switch")
    translator = MarkingTranslator() if pivot else None
    async with Bot(settings, translator=translator) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        for n, text in enumerate(texts, 1):
            await bot.submit(InboundMessage("test", "sw", contact, text, f"w{next(_keys)}"))
            await rec.wait_for(n)
        assert await bot.drain(30)
    return [(r.text, r.language) for r in rec.replies]


def language(mode: str) -> dict[str, Any]:
    return {"mode": mode, "detector": {"kind": "langdetect", "processes": 0}}


# An operator's own texts (in the working language) are used as written.
CUSTOM = {
    "switch_reply": "Fine: {language} it is.",
    "switch_unknown_reply": "Not that one. Try {command} es",
}


async def test_native_mode_labels_a_customized_confirmation_english(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(language=language("native") | CUSTOM)
    (confirmation,) = await replies(settings, "/lang de", pivot=False)
    assert confirmation == ("Fine: German it is.", "en")


async def test_native_mode_labels_a_customized_refusal_english(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(language=language("native") | CUSTOM)
    answered, refusal = await replies(settings, ES, "/lang klingon", pivot=False)
    assert answered[1] == "es"
    assert refusal == ("Not that one. Try /lang es", "en")


async def test_native_mode_confirms_a_default_in_the_new_language(
    make_settings: MakeSettings,
) -> None:
    # The built-in text names the language in its own words, labelled with it.
    settings = make_settings(language=language("native"))
    (german,) = await replies(settings, "/lang de", pivot=False)
    assert german == ("Alles klar, ab jetzt antworte ich auf Deutsch.", "de")


async def test_native_mode_refuses_with_the_default_in_the_customers_language(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(language=language("native"))
    answered, refusal = await replies(settings, ES, "/lang klingon", pivot=False)
    assert answered[1] == "es"
    assert refusal == (
        "Lo siento, no puedo responder en ese idioma. Escribe /lang y un idioma, "
        "por ejemplo: /lang en",
        "es",
    )


@pytest.mark.parametrize(("texts", "expected"), [(("/lang de",), "de"), ((ES, "/lang xx"), "es")])
async def test_pivot_mode_translates_customized_ones(
    make_settings: MakeSettings, texts: tuple[str, ...], expected: str
) -> None:
    pivot = language("pivot") | {"translator": {"kind": "llm"}} | CUSTOM
    settings = make_settings(language=pivot)
    text, tag = (await replies(settings, *texts, pivot=True))[-1]
    assert text.startswith(f"{expected}(") and tag == expected


async def test_pivot_mode_does_not_translate_a_built_in_one_again(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(language=language("pivot") | {"translator": {"kind": "llm"}})
    (confirmation,) = await replies(settings, "/lang ja", pivot=True)
    assert confirmation == ("かしこまりました。これからは日本語でお答えします。", "ja")


async def test_pivot_mode_translates_the_default_for_a_language_without_one(
    make_settings: MakeSettings,
) -> None:
    # Korean has no built-in text: the working language's is translated.
    settings = make_settings(language=language("pivot") | {"translator": {"kind": "llm"}})
    (confirmation,) = await replies(settings, "/lang ko", pivot=True)
    assert confirmation == ("ko(Okay, from now on I will answer in Korean.)", "ko")
