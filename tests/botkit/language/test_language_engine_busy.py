"""The engine translator under overload answers with the busy reply, like the chat engine
(review 3, finding 6): a full translation queue and a wait past the backend's
``queue_timeout_seconds`` both become ``BackendBusyError``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

import pytest
from core_helpers import RecordingConnector

from botkit.backends.local_translator import EngineTranslator
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import BackendBusyError, TranslationError
from botkit.events import Contact, InboundMessage
from botkit.language import TranslatorSettings
from botkit.language.setup import LanguageSupport
from engine.request_errors import EngineBusyError

MakeSettings = Callable[..., Settings]
_keys = itertools.count()


class FakeModel:
    """What ``engine.translation.AsyncTranslator`` looks like to the adapter."""

    name = "fake"

    def __init__(self, error: Exception | None = None, delay: float = 0.0) -> None:
        self.error, self.delay = error, delay

    def supports(self, source: str, target: str) -> bool:
        return True

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return [f"{target}:{t}" for t in texts]

    async def close(self) -> None: ...


def loaded(model: FakeModel, timeout: float | None = None) -> EngineTranslator:
    translator = EngineTranslator(
        TranslatorSettings(kind="engine", model=("x",)), queue_timeout_seconds=timeout
    )
    translator._models = [model]  # what start() would have loaded
    return translator


async def test_full_queue_and_timeout_are_busy_other_errors_are_not() -> None:
    with pytest.raises(BackendBusyError, match="queue is full"):
        await loaded(FakeModel(EngineBusyError("translation queue is full"))).translate(
            ["hola"], "es", "en"
        )
    with pytest.raises(BackendBusyError, match=r"took over 0\.05 s"):
        await loaded(FakeModel(delay=5), timeout=0.05).translate(["hola"], "es", "en")
    assert await loaded(FakeModel(delay=0.01), timeout=30).translate(["a"], "es", "en") == ["en:a"]
    with pytest.raises(RuntimeError):  # a bug stays a bug (TextTranslator wraps it)
        await loaded(FakeModel(RuntimeError("boom"))).translate(["hola"], "es", "en")
    with pytest.raises(TranslationError):  # no model for the pair
        await EngineTranslator(TranslatorSettings(kind="engine", model=("x",))).translate(
            ["hola"], "es", "en"
        )


async def test_the_backends_queue_timeout_bounds_translation(make_settings: MakeSettings) -> None:
    settings = make_settings(backend={"kind": "echo", "engine": {"queue_timeout_seconds": 7.5}})
    translator = loaded(FakeModel())
    support = LanguageSupport(settings, translator=translator)
    await support.start(None)  # type: ignore[arg-type]  # the engine translator needs none
    try:
        assert translator.queue_timeout_seconds == 7.5
    finally:
        await support.close()


async def test_full_translation_queue_gets_the_busy_reply(make_settings: MakeSettings) -> None:
    translator = loaded(FakeModel(EngineBusyError("translation queue is full")))
    settings = make_settings(language={"detector": {"kind": "langdetect", "processes": 0}})
    async with Bot(settings, translator=translator) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        contact = Contact(channel="test", external_id="u1")
        text = "Hola, quiero saber dónde está mi pedido, por favor."
        await bot.submit(InboundMessage("test", "c1", contact, text, f"q{next(_keys)}"))
        (reply,) = await rec.wait_for(1)
    assert reply.text == settings.bot.busy_reply
    assert reply.language == "en"
