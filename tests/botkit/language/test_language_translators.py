"""Translators (none, llm, engine adapter), sentence-level translation and the
``[language]`` settings."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from botkit.backends.local_translator import EngineTranslator
from botkit.backends.protocol import GenerationRequest, Translator
from botkit.backends.translators import LLMTranslator, NoTranslator, create_translator
from botkit.bot import Bot
from botkit.config import Settings, load_settings, settings_from_mapping
from botkit.errors import BackendBusyError, ConfigError, TranslationError
from botkit.language import Glossary, TranslatorSettings
from botkit.language.translate import TextTranslator
from botkit.testing.translator import MarkingTranslator

REPO = Path(__file__).resolve().parents[3]


class ScriptedBackend:
    """A chat model stand-in: answers each request with ``answer(text)``."""

    name = "scripted"

    def __init__(self, answer: Callable[[str], str] = lambda t: f" <{t}> \n") -> None:
        self.answer = answer
        self.requests: list[GenerationRequest] = []
        self.fail: Exception | None = None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ready(self) -> bool:
        return True

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        text = self.answer(request.messages[-1].content)
        for i in range(0, len(text), 3):
            yield text[i : i + 3]


def test_translators_satisfy_the_protocol() -> None:
    engine = EngineTranslator(TranslatorSettings(kind="engine", model=("m",)))
    for translator in (
        NoTranslator(),
        LLMTranslator(ScriptedBackend()),
        MarkingTranslator(),
        engine,
    ):
        assert isinstance(translator, Translator)


async def test_no_translator() -> None:
    none = NoTranslator()
    assert none.supports("en-US", "en") and not none.supports("es", "en")
    assert await none.translate(["a"], "en", "en-GB") == ["a"]
    with pytest.raises(TranslationError, match="es → en"):
        await none.translate(["a"], "es", "en")


async def test_llm_translator_requests() -> None:
    backend = ScriptedBackend()
    llm = LLMTranslator(backend)
    out = await llm.translate(["Hola {0}.", "Adiós."], "es", "en-GB")
    assert out == ["<Hola {0}.>", "<Adiós.>"]  # stripped
    request = backend.requests[0]
    assert request.temperature == 0.0 and request.max_new_tokens is not None
    system = request.messages[0].content
    assert "from Spanish (es) into English (en-GB)" in system and "{0}" in system
    assert request.messages[1].content == "Hola {0}."
    assert llm.supports("es", "pt-BR") and not llm.supports("es", "not a tag")
    assert await llm.translate(["same"], "en", "en-US") == ["same"]
    assert len(backend.requests) == 2


async def test_busy_backend_stays_a_busy_signal() -> None:
    backend = ScriptedBackend()
    backend.fail = BackendBusyError("queue full")
    text = TextTranslator(LLMTranslator(backend))
    with pytest.raises(BackendBusyError):
        await text.translate_text("Hola. Adiós.", "es", "en")


async def test_translator_failures_become_translation_errors() -> None:
    text = TextTranslator(MarkingTranslator(fail_with=RuntimeError("boom")))
    with pytest.raises(TranslationError, match=r"'marking' failed on es → en: RuntimeError: boom"):
        await text.translate_text("Hola.", "es", "en")

    class Short(MarkingTranslator):
        async def translate(self, texts: Any, source: str, target: str) -> list[str]:
            return ["only one"]

    with pytest.raises(TranslationError, match="returned 1 texts for 2"):
        await TextTranslator(Short()).translate_text("Uno. Dos.", "es", "en")

    class Empty(MarkingTranslator):
        async def translate(self, texts: Any, source: str, target: str) -> list[str]:
            return ["  " for _ in texts]

    # An empty translation keeps the original sentence rather than sending nothing.
    assert await TextTranslator(Empty()).translate_text("Uno. Dos.", "es", "en") == "Uno. Dos."


async def test_text_translator_batches_and_skips_what_needs_no_translation() -> None:
    marking = MarkingTranslator()
    text = TextTranslator(marking, Glossary(["botkit"]))
    source = "Hola.\n\n```\ncode. here\n```\n12345\nUsa botkit. 👍 "
    out = await text.translate_text(source, "es", "en")
    assert out == "en(Hola.)\n\n```\ncode. here\n```\n12345\nen(Usa botkit.) 👍 "
    assert len(marking.calls) == 1 and marking.calls[0].texts == ("Hola.", "Usa {0}.")
    assert await text.translate_text(source, "es", "es-MX") == source
    assert len(marking.calls) == 1


async def test_stream_translation_closes_its_source() -> None:
    closed = []

    async def source() -> AsyncIterator[str]:
        try:
            for part in ["One. ", "Two. ", "Three."]:
                yield part
        finally:
            closed.append(True)

    text = TextTranslator(MarkingTranslator())
    stream = text.translate_stream(source(), "en", "es")
    assert await stream.__anext__() == "es(One.) "
    await stream.aclose()  # the customer went away: the model request is released
    assert closed == [True]


async def test_missing_engine_is_a_clear_startup_error(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "engine.translation", None)  # import fails
    settings = make_settings(
        language={"translator": {"kind": "engine", "model": "facebook/nllb-200-distilled-600M"}}
    )
    with pytest.raises(TranslationError, match=r"needs the local engine's translation models"):
        async with Bot(settings):
            pass
    assert isinstance(create_translator(settings.language.translator, None), EngineTranslator)  # type: ignore[arg-type]


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ={})
    return [str(p) for p in info.value.problems]


def test_language_settings_validation() -> None:
    settings = settings_from_mapping(
        {"bot": {"working_language": "EN_us"},
         "language": {"languages": ["pt_br", "zh-tw", "pt-BR"], "glossary": [" botkit "],
                      "translator": {"kind": "llm"}}},
        environ={},
    )  # fmt: skip
    assert settings.bot.working_language == "en-US"
    assert settings.language.languages == ("pt-BR", "zh-Hant")
    assert settings.language.glossary == ("botkit",)
    assert any("language" in p and "needs a translator" in p
               for p in problems({"language": {"mode": "pivot"}}))  # fmt: skip
    assert any("language.translator.model" in p
               for p in problems({"language": {"translator": {"kind": "engine"}}}))  # fmt: skip
    assert any(p.startswith("language.languages") and "not a language tag" in p
               for p in problems({"language": {"languages": ["es", "español!"]}}))  # fmt: skip
    assert any(p.startswith("bot.working_language")
               for p in problems({"bot": {"working_language": "english"}}))  # fmt: skip
    assert any(p.startswith("language.switch_command")
               for p in problems({"language": {"switch_command": "/lang now"}}))  # fmt: skip
    assert any(p.startswith("language.glossary")
               for p in problems({"language": {"glossary": ["x" * 201]}}))  # fmt: skip
    assert any(p.startswith("language.detector.min_confidence")
               for p in problems({"language": {"detector": {"min_confidence": 2}}}))  # fmt: skip
    assert any(p.startswith("language.translatr")
               for p in problems({"language": {"translatr": {}}}))  # fmt: skip


def test_example_config_documents_the_language_defaults() -> None:
    settings = load_settings(REPO / "config.example.toml", environ={})
    assert settings.language == Settings().language
