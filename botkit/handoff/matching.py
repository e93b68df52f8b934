"""Recognizing hand-off requests: exact commands and whole-word keywords."""

from __future__ import annotations

import re
from collections.abc import Iterable

import regex

__all__ = ["CommandMatcher", "KeywordMatcher"]

# "/human", "/HUMAN", "/human@ShopBot": the whole message, nothing else. Anything longer
# than this can be a command is rejected before the regex sees it.
_COMMAND = re.compile(r"(/[A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?")
_MAX_COMMAND_CHARS = 1 + 32 + 1 + 64


def parse_command(text: str) -> str | None:
    """The command ``text`` consists of, lowercased without its ``@botname``, or None."""
    stripped = text.strip()
    if len(stripped) > _MAX_COMMAND_CHARS:
        return None
    match = _COMMAND.fullmatch(stripped)
    return None if match is None else match.group(1).lower()


class CommandMatcher:
    """Whether a message is one of ``commands`` (already lowercased)."""

    def __init__(self, commands: Iterable[str]) -> None:
        self.commands = frozenset(commands)

    def match(self, text: str) -> str | None:
        """The command ``text`` is, or None."""
        command = parse_command(text)
        return command if command in self.commands else None


class KeywordMatcher:
    """Whether a short message contains one of ``phrases`` as whole words.

    Phrases are casefolded with single spaces; the message is normalized the same way
    first, so "Talk  to a HUMAN!" matches "talk to a human".
    """

    def __init__(self, phrases: Iterable[str], *, max_chars: int) -> None:
        unique = sorted(set(phrases), key=len, reverse=True)
        self.max_chars = max_chars
        # Word-character boundaries rather than \b so phrases that start or end with
        # punctuation work. Marks count as word characters: in Devanagari, Bengali,
        # Tamil... a vowel sign is part of the word, so "पता" is not found in "लापता".
        self._pattern = (
            regex.compile(
                r"(?<![\w\p{M}])(?:" + "|".join(map(regex.escape, unique)) + r")(?![\w\p{M}])"
            )
            if unique
            else None
        )

    def match(self, text: str) -> str | None:
        """The phrase found in ``text``, or None."""
        if self._pattern is None or len(text) > self.max_chars:
            return None
        found = self._pattern.search(" ".join(text.casefold().split()))
        return None if found is None else found.group(0)
