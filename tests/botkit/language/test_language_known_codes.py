"""A language code must name a real language (audit: multilingual, finding 2): "sp" for
Spanish was accepted and quietly turned Spanish off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from botkit.backends.echo import EchoBackend
from botkit.backends.translators import LLMTranslator
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.language.codes import is_known_language, known_tag
from botkit.language.setup import LanguageSupport

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


@pytest.mark.parametrize("code", ["zxx", "und", "mul", "mis", "qaa", "qtz", "Qab", "xx-YY"])
def test_special_and_unassigned_codes_are_not_languages(code: str) -> None:
    assert not is_known_language(code)
    with pytest.raises(ValueError, match="not a known language"):
        known_tag(code)


@pytest.mark.parametrize(
    ("code", "tag"), [("es", "es"), ("pt_br", "pt-BR"), ("spa", "es"), ("eo", "eo"),
                      ("sr-Latn", "sr-Latn"), ("iw", "he"), ("zh-TW", "zh-Hant"),
                      ("yue", "yue"), ("ceb", "ceb"), ("ckb", "ckb"), ("nan", "nan"),
                      ("haw", "haw"), ("gsw-CH", "gsw-CH"), ("rom", "rom"), ("qua", "qua")]
)  # fmt: skip
def test_real_languages_are_known(code: str, tag: str) -> None:
    assert known_tag(code) == tag
    settings = settings_from_mapping({"language": {"languages": [code, "de"]}}, environ={})
    assert settings.language.languages == (tag, "de")


@pytest.mark.parametrize(
    ("code", "hint"),
    [("sp", " (did you mean 'es'?)"), ("ge", ""), ("zz", ""),
     ("sh", " (Serbo-Croatian was split: use 'sr', 'hr' or 'bs')")],
)  # fmt: skip
def test_a_refused_code_is_only_given_a_hint_that_fits(code: str, hint: str) -> None:
    # "sh" used to get "did you mean 'sq'?" (Albanian's own name, Shqip, starts so)
    with pytest.raises(ValueError) as info:
        known_tag(code)
    assert str(info.value) == f"{code!r} is not a known language{hint}"


def test_the_llm_translator_does_not_take_an_unknown_language() -> None:
    llm = LLMTranslator(EchoBackend())
    assert llm.supports("es", "en") and llm.supports("pt-BR", "eo")
    assert llm.supports("yue", "en")
    assert not llm.supports("es", "xx") and not llm.supports("zxx", "en")


def test_an_unknown_working_language_is_a_problem_of_the_settings() -> None:
    assert problems({"bot": {"working_language": "zz"}}) == [
        "bot.working_language: 'zz' is not a known language"
    ]


def test_the_bot_works_in_the_normalized_working_language(make_settings: MakeSettings) -> None:
    assert LanguageSupport(make_settings(bot={"working_language": "YUE"})).working == "yue"
