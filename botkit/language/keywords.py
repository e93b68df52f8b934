"""Whether a keyword, as it is matched, still means what was written.

Keywords (``[plugins.intents]``, ``[plugins.handoff] keywords``) are compared as their
``search_terms``: case, accents and punctuation do not matter. Some keywords do not
survive that: "C++" is matched as "c", "100%" as "100", a single letter matches wherever
it stands alone, and a single character of a script written without spaces ("退") never
matches inside a sentence ("我要退货": compared in pairs of characters). Such keywords
are refused when the config is read, with the reason.
"""

from __future__ import annotations

import regex

from botkit.language.words import search_terms

__all__ = ["check_keyword"]

# Symbols that matching ignores but that, attached to a word, make a keyword what it is:
# "C++", "C#", "Q&A", "100%", "$5", "A+" (the energy label). Between spaces ("Fish &
# Chips") they only separate words, like other punctuation.
_SYMBOL = regex.compile(
    r"(?<=[\p{L}\p{N}\p{M}])[\p{Sm}\p{Sc}\p{So}#%&*@]|[\p{Sm}\p{Sc}\p{So}#%&*@](?=[\p{L}\p{N}])"
)
_GRAPHEME = regex.compile(r"\X")


def _unspaced(term: str) -> bool:
    """Whether ``term`` is of a script written without spaces (Chinese, Japanese, Thai...),
    whose runs ``search_terms`` cuts into pairs of characters."""
    return len(search_terms(term * 3)) > 1


def check_keyword(keyword: str) -> None:
    """Refuse a keyword that, as matched, no longer means what was written (see the
    module docstring).

    Raises:
        ValueError: why, and what to write instead.
    """
    folded = " ".join(search_terms(keyword))
    symbol = _SYMBOL.search(keyword)
    if symbol is not None:
        raise ValueError(
            f"a keyword {keyword!r} is matched as {folded!r}: its {symbol.group(0)!r} is "
            f"ignored like all punctuation, so it would match any message with {folded!r}; "
            "write what it means in words"
        )
    terms = folded.split()
    single = [t for t in terms if len(_GRAPHEME.findall(t)) == 1]
    if any(_unspaced(t) for t in single):
        raise ValueError(
            f"a keyword {keyword!r} is matched as {folded!r}: in Chinese, Japanese, Thai and "
            "other scripts written without spaces, text is compared in pairs of "
            "characters, so a single character only matches where it stands alone; write "
            "at least two characters"
        )
    if len(terms) == 1 and single:
        raise ValueError(
            f"a keyword {keyword!r} is matched as {folded!r}: a single character, which "
            "matches wherever it stands alone as a word; write at least two characters"
        )
