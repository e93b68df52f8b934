"""The switch command as customers' keyboards type it (audit: multilingual, finding 7):
bidi marks around it, a full-width slash from a CJK input method, punctuation after the
language."""

from __future__ import annotations

import pytest

from botkit.language.codes import find_language
from botkit.language.commands import parse_switch


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("\u200f/lang ar", "ar"),  # a right-to-left mark before the command
        ("/lang العربية\u200f", "ar"),  # and after the argument
        ("\u061c/lang\u200e العربية", "ar"),  # Arabic letter mark, left-to-right mark
        ("\ufeff/LANG de", "de"),  # a byte order mark
        ("\uff0flang ja", "ja"),  # full-width solidus
        ("\uff0f\uff4c\uff41\uff4e\uff47\u3000\uff4a\uff41", "ja"),  # all full-width
        ("/lang español.", "es"),
        ("/lang es!", "es"),
        ('/lang "es"', "es"),
        ("/lang «français» ?", "fr"),
        ("/lang pt-BR.", "pt-BR"),
        ("/lang@shop_bot es", "es"),
    ],
)
def test_the_command_is_found_with_marks_and_punctuation(text: str, language: str) -> None:
    request = parse_switch(text, "/lang")
    assert request is not None and find_language(request.argument) == language


@pytest.mark.parametrize("text", ["/language es", "lang es", "¿/lang es", "x/lang es"])
def test_other_text_is_no_command(text: str) -> None:
    assert parse_switch(text, "/lang") is None


def test_a_bare_command_has_no_argument() -> None:
    assert parse_switch("/lang\u200f", "/lang") == parse_switch("/lang", "/lang")
    request = parse_switch("/lang !", "/lang")
    assert request is not None and request.argument == ""
