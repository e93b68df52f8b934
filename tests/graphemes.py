"""Texts that a splitter must not cut inside a character as shown (a grapheme cluster),
shared by the Slack and Telegram splitting tests (``botkit.textsplit`` is the splitter
behind both)."""

from __future__ import annotations

from collections.abc import Callable

import regex

THAI = "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำสวัสดีครับยินดีต้อนรับ"  # no spaces
DEVANAGARI = "नमस्ते आपकी सहायता के लिए धन्यवाद क्षत्रियों हिन्दी"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
FLAGS = "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea\U0001f1ef\U0001f1f5"  # FR DE JP
# One cluster each, to build random texts from.
CLUSTERS = [
    "a",
    "\u0e01\u0e34",  # Thai KO KAI + SARA I
    "\u0915\u094d\u0937\u093f",  # Devanagari KSSA + vowel sign I
    "e\u0301",
    FAMILY,
    FLAGS[:2],
    "1\ufe0f\u20e3",  # keycap one
    "\U0001f44d\U0001f3fd",  # thumbs up, medium skin tone
    " ",
    ". ",
    "\n\n",
]


def assert_whole_characters(
    text: str, pieces: list[str], limit: int, measure: Callable[[str], int] = len
) -> None:
    """Each piece fits (by ``measure``) and starts and ends between two grapheme clusters
    of ``text``; only whitespace at the cuts is lost."""
    bounds = {m.end() for m in regex.finditer(r"\X", text)} | {0}
    at = 0
    for piece in pieces:
        assert measure(piece) <= limit
        assert not regex.match(r"[\p{M}\u200d\u200c]", piece), (limit, piece[:5])
        start = text.index(piece, at)
        assert not text[at:start].strip(), (limit, text[at:start])
        assert start in bounds and start + len(piece) in bounds, (limit, piece[:5])
        at = start + len(piece)
    assert not text[at:].strip()
