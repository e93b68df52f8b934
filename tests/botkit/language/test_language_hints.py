"""A channel's language hint seeds a new conversation only when the bot may answer in
it (audit: multilingual, finding 9): not a language outside ``language.languages``, and
not a code that names no language (``zxx``, ``und``, ``mul``)."""

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


async def first_reply(settings: Settings, hint: str) -> tuple[str, str | None]:
    """The reply to "ok" (too short to detect) from a contact with ``hint``."""
    contact = Contact(channel="test", external_id=f"u-{hint}", language_hint=hint)
    async with Bot(settings, translator=MarkingTranslator()) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        await bot.submit(InboundMessage("test", hint, contact, "ok", f"h{next(_keys)}"))
        reply = (await rec.wait_for(1))[0]
        assert await bot.drain(30)
    return reply.text, reply.language


def language(**extra: Any) -> dict[str, Any]:
    return {"detector": {"kind": "langdetect", "processes": 0}, **extra}


async def test_a_hint_outside_the_list_is_ignored(make_settings: MakeSettings) -> None:
    settings = make_settings(language=language(languages=["es", "fr"]))
    assert await first_reply(settings, "ru") == ("echo: ok", "en")


async def test_a_listed_hint_still_seeds(make_settings: MakeSettings) -> None:
    settings = make_settings(language=language(languages=["es", "fr"]))
    text, tag = await first_reply(settings, "es-MX")
    # As the configured entry of its language: the hint is the customer's, and what a
    # customer sends must not multiply the tags caches are keyed by (``conversation_tag``).
    assert text.startswith("es(") and tag == "es"


@pytest.mark.parametrize("hint", ["zxx", "und", "mul", "xx"])
async def test_a_hint_that_names_no_language_is_ignored(
    make_settings: MakeSettings, hint: str
) -> None:
    assert await first_reply(make_settings(language=language()), hint) == ("echo: ok", "en")
