"""``mode = "auto"`` without a translator and a chat model that declares its languages.

SmolLM2-135M declares English only (its GGUF's general.languages, its card's language:)
and, asked to answer in German, wrote "Der Welt ist nach dem...": a customer writing a
language the model does not declare is answered in the working language instead, and the
start log says so and how to get replies in their language.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from core_helpers import RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Contact, InboundMessage
from botkit.language.setup import LanguageSupport, model_languages
from botkit.testing.backends import RecordingEcho

MakeSettings = Callable[..., Settings]
ES = "Hola, quiero saber dónde está mi pedido ORD-2024-0042. Gracias por su ayuda."
DE = "Guten Tag, ich möchte gerne wissen, wo meine Bestellung geblieben ist."
NATIVE_ES = "Always answer in Spanish (es)"


class Declaring(RecordingEcho):
    """The echo backend with a chat model that declares ``languages``."""

    def __init__(self, languages: tuple[str, ...] | None) -> None:
        super().__init__()
        self.model_languages = languages


async def systems(settings: Settings, backend: RecordingEcho, *texts: str) -> list[str]:
    async with Bot(settings, backend=backend) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        for i, text in enumerate(texts):
            key = f"{id(backend)}-{i}"  # new conversations, on a database tests share
            contact = Contact(channel="test", external_id=key)
            await bot.submit(InboundMessage("test", key, contact, text, key))
            await rec.wait_for(i + 1)
    return [r.messages[0].content for r in backend.requests]


async def test_auto_answers_in_the_working_language_what_the_model_does_not_write(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "botkit.language")
    backend = Declaring(("en", "de"))
    spanish, german = await systems(make_settings(), backend, ES, DE)
    assert NATIVE_ES not in spanish
    assert "The customer writes in Spanish (es)" in spanish
    assert "Always answer in English (en)" in spanish
    assert "Always answer in German (de)" in german  # declared: native as before
    start = " ".join(r.getMessage() for r in caplog.records)
    assert "declares only en, de" in start and "told to answer in en" in start
    assert 'language.translator.kind = "engine"' in start


async def test_a_model_that_declares_nothing_keeps_native(make_settings: MakeSettings) -> None:
    for declared in (None, (), ("multilingual",)):
        (spanish,) = await systems(make_settings(), Declaring(declared), ES)
        assert NATIVE_ES in spanish


async def test_explicit_native_is_kept_and_warned_about(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "botkit.language")
    settings = make_settings(language={"mode": "native", "languages": ["en", "es"]})
    (spanish,) = await systems(settings, Declaring(("en",)), ES)
    assert NATIVE_ES in spanish
    assert any(
        "mode 'native'" in r.getMessage() and "writing es" in r.getMessage() for r in caplog.records
    )


async def test_configured_languages_the_model_declares_log_nothing(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "botkit.language")
    support = LanguageSupport(make_settings(language={"languages": ["en", "es"]}))
    await support.start(Declaring(("en", "es")))
    try:
        assert support.model_languages == ("en", "es")
        assert not caplog.records
    finally:
        await support.close()


async def test_knowledge_in_native_mode_is_warned_about(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "botkit.language")
    settings = make_settings(plugins={"knowledge": {"sources": ["kb"]}})
    support = LanguageSupport(settings)
    await support.start(Declaring(None))
    await support.close()
    (record,) = caplog.records
    assert "knowledge plugin" in record.getMessage() and "finds none" in record.getMessage()


def test_declared_tags_are_normalized() -> None:
    assert model_languages(Declaring(("EN", "pt-br", "en"))) == ("en", "pt-BR")
    assert model_languages(Declaring(("en", "code"))) is None
    assert model_languages(object()) is None
