"""The ``engine`` translator on the real local engine, with a tiny random M2M100
checkpoint built here (its translations are noise, but every step is the real one:
checkpoint loading, language-pair planning, batched decoding, the bot's pipeline)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector
from file_modules import load

from botkit.backends.local_translator import EngineTranslator
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import TranslationError
from botkit.events import Contact, InboundMessage
from botkit.language import TranslatorSettings

pytest.importorskip("torch", reason="the engine translator needs torch (botkit[engine])")
pytest.importorskip("transformers", reason="the tiny checkpoint is built with transformers")


@pytest.fixture(scope="module")
def m2m100(tmp_path_factory: pytest.TempPathFactory) -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = tmp_path_factory.mktemp("m2m100")
    load("engine/translation/seq2seq_tiny.py").build_m2m100(path)
    return str(path)


def engine_settings(model: str, **kw: object) -> TranslatorSettings:
    return TranslatorSettings(kind="engine", model=(model,), device="cpu", dtype="float32", **kw)  # type: ignore[arg-type]


async def test_engine_translator_adapter(m2m100: str) -> None:
    translator = EngineTranslator(engine_settings(m2m100))
    await translator.start()
    try:
        assert translator.supports("es", "en") and translator.supports("zh-Hans", "pt-BR")
        assert not translator.supports("te", "en")  # not an M2M100 language
        assert not translator.supports("es", "not a tag")
        out = await translator.translate(["Hola.", "¿Dónde está?"], "es", "en")
        assert len(out) == 2 and all(isinstance(t, str) for t in out)
        assert await translator.translate(["same"], "en-US", "en") == ["same"]
        with pytest.raises(TranslationError, match="te → en"):
            await translator.translate(["x"], "te", "en")
    finally:
        await translator.close()


async def test_pivot_bot_on_the_engine_translator(
    m2m100: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        language={"languages": ["es", "fr"], "translator": {"kind": "engine", "model": m2m100,
                                                            "device": "cpu"}}
    )  # fmt: skip
    text = "Hola, ¿dónde está mi pedido ORD-2024-0042? Gracias."
    async with Bot(settings) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        await bot.submit(InboundMessage("test", "c1", Contact("test", "u1"), text, "k1"))
        reply = (await rec.wait_for(1, within=60))[0]
        assert await bot.drain(10)  # the message's language is recorded when it is done
        inbound, outbound = await bot.store.messages_after("test", "c1", 0, 10)
    assert inbound.language == "es" and inbound.text == text
    assert inbound.working_text is not None and inbound.working_text != text
    assert "ORD-2024-0042" in inbound.working_text  # a protected span survives any model
    assert outbound.working_text is not None and outbound.working_text.startswith("echo: ")
    assert outbound.text == reply.text and reply.language == "es"


async def test_engine_startup_errors_name_the_problem(
    m2m100: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    unsupported = make_settings(
        language={"languages": ["es", "te"], "translator": {"kind": "engine", "model": m2m100}}
    )
    with pytest.raises(TranslationError, match=r"cannot translate te → en, en → te"):
        async with Bot(unsupported):
            pass
    missing = make_settings(
        language={"translator": {"kind": "engine", "model": str(tmp_path / "no-such-model")}}
    )
    with pytest.raises(TranslationError, match=r"no-such-model.* could not be loaded"):
        async with Bot(missing):
            pass
