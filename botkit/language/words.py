"""Words for matching and search, in any script.

``search_terms`` turns a text into the terms the knowledge base and the intents plugin
compare: Unicode-normalized (NFKC), case-folded, accents removed ("Café" and "cafe"
match, as customers often type without them), split into runs of letters and digits.
Scripts written without spaces (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar) have no
word edges to split on, so such runs become overlapping character pairs ("订单状态" ->
"订单", "单状", "状态"), the usual choice of search engines without a dictionary.

Every pattern is linear in the text (no nested repetition that can backtrack).
"""

from __future__ import annotations

import unicodedata

import regex

__all__ = ["fold_accents", "search_terms"]

# Letters, digits and the marks on them; "_" and punctuation separate words.
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
# Accents of Latin, Greek and Cyrillic letters go; marks on other scripts (Hebrew
# points, Devanagari and Thai vowel signs...) are part of the spelling and stay.
_ACCENTED = regex.compile(r"([\p{Latin}\p{Greek}\p{Cyrillic}])\p{M}+")
_UNSPACED_CHAR = (
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]\p{M}*"
)
_UNSPACED = regex.compile(f"(?:{_UNSPACED_CHAR})+")
_CHARACTER = regex.compile(_UNSPACED_CHAR)


def fold_accents(text: str) -> str:
    """``text`` without the accents of Latin, Greek and Cyrillic letters (``_ACCENTED``),
    composed again (NFC)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", _ACCENTED.sub(r"\1", decomposed))


def search_terms(text: str, *, accents: bool = False) -> list[str]:
    """The terms of ``text`` in order (see the module docstring).

    Args:
        text: any text.
        accents: keep the accents (for a stemmer, whose rules are written for them:
            Portuguese "-ções", Russian "-ой"); the terms are otherwise the same.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    if not accents:
        folded = fold_accents(folded)
    terms: list[str] = []
    for word in _WORD.findall(folded):
        position = 0
        for run in _UNSPACED.finditer(word):
            if run.start() > position:
                terms.append(word[position : run.start()])
            chars = _CHARACTER.findall(run.group(0))  # a letter with its marks
            if len(chars) == 1:
                terms.append(chars[0])
            else:
                terms.extend(chars[i] + chars[i + 1] for i in range(len(chars) - 1))
            position = run.end()
        if position < len(word):
            terms.append(word[position:])
    return terms
