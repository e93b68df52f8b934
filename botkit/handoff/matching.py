"""Recognizing hand-off requests: exact commands and whole-word keywords."""

from __future__ import annotations

import re
from collections.abc import Iterable

import regex

from botkit.language.words import search_terms

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

    Compared as the intents plugin compares its keywords (``search_terms``): case,
    accents, Unicode normalization (NFC/NFD, full-width forms) and punctuation do not
    matter, so "Quiero atencion al cliente!" contains "atención al cliente" and "Talk
    to a HUMAN" "talk to a human". A phrase matches a run of whole terms: a vowel sign
    is part of its word, so "पता" is not found in "लापता"; in scripts written without
    spaces (Chinese, Japanese, Thai...) text is compared in pairs of characters. A
    phrase without letters or digits (an emoji, "🆘") has no terms: it is looked for as
    written, not next to a letter, digit or mark.
    """

    def __init__(self, phrases: Iterable[str], *, max_chars: int) -> None:
        self.max_chars = max_chars
        # The phrase as configured for each run of terms (the first of phrases that
        # fold alike), and the lengths of those runs, longest first: at one place in a
        # message, the longest phrase wins.
        self._phrases: dict[tuple[str, ...], str] = {}
        symbols: list[str] = []
        for phrase in phrases:
            terms = tuple(search_terms(phrase))
            if terms:
                self._phrases.setdefault(terms, phrase)
            elif phrase.strip():
                symbols.append(" ".join(phrase.casefold().split()))
        self._lengths = sorted({len(terms) for terms in self._phrases}, reverse=True)
        unique = sorted(set(symbols), key=len, reverse=True)
        self._symbols = (
            regex.compile(
                r"(?<![\w\p{M}])(?:" + "|".join(map(regex.escape, unique)) + r")(?![\w\p{M}])"
            )
            if unique
            else None
        )

    def match(self, text: str) -> str | None:
        """The phrase (as configured) found in ``text``, or None."""
        if len(text) > self.max_chars:
            return None
        if self._phrases:
            terms = search_terms(text)
            for start in range(len(terms)):
                for length in self._lengths:
                    if start + length > len(terms):
                        continue
                    phrase = self._phrases.get(tuple(terms[start : start + length]))
                    if phrase is not None:
                        return phrase
        if self._symbols is not None:
            found = self._symbols.search(" ".join(text.casefold().split()))
            if found is not None:
                return found.group(0)
        return None
