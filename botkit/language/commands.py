"""The explicit language switch command, e.g. ``/lang es`` or ``/lang español``.

The command word is configurable (``language.switch_command``; empty turns it off). It
matches case-insensitively at the start of the message, optionally followed by
``@botname`` (Telegram appends it in groups); the rest of the message is the argument:
a language tag (``es``, ``pt-BR``) or a language name in English or in the language
itself (see ``botkit.language.codes.find_language``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SwitchRequest", "parse_switch"]

MAX_ARGUMENT_CHARS = 64


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    """A switch command: what followed the command word (stripped, possibly empty)."""

    argument: str


def _is_edge(c: str) -> bool:
    """Whether ``c`` is trimmed off the message's ends: whitespace, and format
    characters (Cf): the bidi marks U+200E/U+200F/U+061C some Arabic and Hebrew
    keyboards insert, zero-width spaces and joiners, a byte order mark. (Not
    ``_fold``'s invisible characters: at a message's ends every format character is
    noise, but inside a text ZWJ and ZWNJ shape words and bidi marks order them.)"""
    return c.isspace() or unicodedata.category(c) == "Cf"


def _trim(text: str, extra: Callable[[str], bool] = lambda c: False) -> str:
    start, end = 0, len(text)
    while start < end and (_is_edge(text[start]) or extra(text[start])):
        start += 1
    while end > start and (_is_edge(text[end - 1]) or extra(text[end - 1])):
        end -= 1
    return text[start:end]


def _is_punctuation(c: str) -> bool:
    # "/lang español." "/lang es!" '/lang "es"': punctuation never ends a tag or a
    # language name (a hyphen inside one, "pt-BR", is not at an end).
    return unicodedata.category(c).startswith("P")


def parse_switch(text: str, command: str) -> SwitchRequest | None:
    """The switch request in ``text``, or None when ``text`` is not the command.

    Bidi marks and other format characters around the message and its argument are
    ignored, the command may be typed in full-width forms (a Japanese or Chinese IME
    writes U+FF0F for "/"), and punctuation around the argument is dropped.
    """
    if not command:
        return None
    stripped = _trim(text)
    # NFKC maps full-width ASCII forms to ASCII one for one (U+FF0F -> "/", U+FF4C -> "l").
    head = unicodedata.normalize("NFKC", stripped[: len(command)])
    if not head.casefold() == command.casefold():
        return None
    rest = stripped[len(command) :]
    mention = re.match(r"@\w+", rest)
    if mention is not None:
        rest = rest[mention.end() :]
    if rest and not (_is_edge(rest[0])):
        return None  # "/language" is not "/lang" followed by "uage"
    argument = unicodedata.normalize("NFKC", _trim(rest, _is_punctuation))  # full-width "ja" too
    return SwitchRequest(argument[:MAX_ARGUMENT_CHARS])
