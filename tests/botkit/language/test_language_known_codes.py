"""A language code must name a real language (audit: multilingual, finding 2): "sp" for
Spanish was accepted and quietly turned Spanish off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from botkit.backends.echo import EchoBackend
from botkit.backends.translators import LLMTranslator
from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.language.codes import is_known_language, known_tag

MakeSettings = Callable[..., Settings]


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ={})
    return [str(p) for p in info.value.problems]


def test_an_unknown_language_in_the_list_is_a_problem_naming_the_item() -> None:
    assert problems({"language": {"languages": ["sp", "de"]}}) == [
        "language.languages[0]: 'sp' is not a known language (did you mean 'es'?)"
    ]
    assert problems({"language": {"languages": ["es", "xx"]}}) == [
        "language.languages[1]: 'xx' is not a known language"
    ]


@pytest.mark.parametrize("code", ["zxx", "und", "mul", "mis", "qaa", "xx-YY"])
def test_special_and_unassigned_codes_are_not_languages(code: str) -> None:
    assert not is_known_language(code)
    with pytest.raises(ValueError, match="not a known language"):
        known_tag(code)


@pytest.mark.parametrize(
    ("code", "tag"), [("es", "es"), ("pt_br", "pt-BR"), ("spa", "es"), ("eo", "eo"),
                      ("sr-Latn", "sr-Latn"), ("iw", "he"), ("zh-TW", "zh-Hant")]
)  # fmt: skip
def test_real_languages_are_known(code: str, tag: str) -> None:
    assert known_tag(code) == tag
    settings = settings_from_mapping({"language": {"languages": [code, "de"]}}, environ={})
    assert settings.language.languages == (tag, "de")


def test_the_llm_translator_does_not_take_an_unknown_language() -> None:
    llm = LLMTranslator(EchoBackend())
    assert llm.supports("es", "en") and llm.supports("pt-BR", "eo")
    assert not llm.supports("es", "xx") and not llm.supports("zxx", "en")


def test_an_unknown_working_language_keeps_the_bot_from_starting(
    make_settings: MakeSettings,
) -> None:
    with pytest.raises(ConfigError, match=r"bot\.working_language: 'zz' is not a known"):
        Bot(make_settings(bot={"working_language": "zz"}))
