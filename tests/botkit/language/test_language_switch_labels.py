"""The switch command's replies carry the language they are written in (audit:
multilingual, finding 6): in native mode they are the configured working-language texts,
which were labelled with the customer's language (a widget read English out in a German
voice); in pivot mode they are translated into the customer's language."""

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


async def test_native_mode_labels_the_confirmation_english(make_settings: MakeSettings) -> None:
    settings = make_settings(language=language("native"))
    (confirmation,) = await replies(settings, "/lang de", pivot=False)
    assert confirmation == ("Okay, from now on I will answer in German.", "en")


async def test_native_mode_labels_the_refusal_english(make_settings: MakeSettings) -> None:
    settings = make_settings(language=language("native"))
    answered, refusal = await replies(settings, ES, "/lang klingon", pivot=False)
    assert answered[1] == "es"
    assert refusal[0].startswith("Sorry, I cannot answer in that language")
    assert refusal[1] == "en"


@pytest.mark.parametrize(("texts", "expected"), [(("/lang de",), "de"), ((ES, "/lang xx"), "es")])
async def test_pivot_mode_translates_them(
    make_settings: MakeSettings, texts: tuple[str, ...], expected: str
) -> None:
    settings = make_settings(language=language("pivot") | {"translator": {"kind": "llm"}})
    text, tag = (await replies(settings, *texts, pivot=True))[-1]
    assert text.startswith(f"{expected}(") and tag == expected
