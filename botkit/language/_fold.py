"""A text as protected spans are looked for in it: NFC, without invisible characters,
full-width letters and digits as ASCII.

Text pasted from macOS or some Android keyboards arrives decomposed (NFD: "e" + U+0301),
and a glossary may be written either way, so "Café Crème" was found in one form only
and the product name reached the translator in the other. Zero-width characters inside
an id ("ORD\\u200b-2024-0042", from a copy out of a web page) cut it in two. So spans are
looked for in a folded copy and mapped back: a span is always cut from the text as the
customer wrote it, byte for byte (decomposed accents and zero-width characters inside it
included), so what comes out of translation is what went in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Folded", "fold", "fold_text", "nfc"]

# Invisible and meaningless inside a word or an id: zero-width space, word joiner, zero
# width no-break space (a BOM mid-text). ZWJ and ZWNJ are left alone: they shape emoji
# sequences and Persian and Indic words.
_INVISIBLE = frozenset("\u200b\u2060\ufeff")
# Full-width Latin letters and digits and the marks ids are made of (U+FF03 number sign,
# U+FF0D hyphen-minus, U+FF3F low line), as a Japanese or Chinese input method writes
# them: the full-width form of ORD-2024-0042 is that id (its hyphen cut it in two). One
# character each way, so positions hold. Not full-width punctuation: a full-width comma
# or parenthesis must still end a URL written against it.
_FULL_WIDTH = {c: c - 0xFEE0 for c in (0xFF03, 0xFF0D, 0xFF3F, *range(0xFF10, 0xFF1A),
               *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))}  # fmt: skip
_FOLDED = re.compile("[" + "".join(map(chr, (*_FULL_WIDTH, *map(ord, _INVISIBLE)))) + "]")


def nfc(text: str) -> str:
    """``text`` in NFC (glossary terms are compared in this form)."""
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded text and, per character of it, the original range it came from.

    ``starts`` and ``ends`` are None when nothing changed (the common case).
    """

    text: str
    starts: list[int] | None = None
    ends: list[int] | None = None

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The original range of the folded range ``[start, end)`` (not empty)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def _composes(chunk: str, c: str) -> bool:
    """Whether starter ``c`` composes with (or reorders into) the end of ``chunk`` under
    NFC: a Hangul vowel or final jamo after a syllable, a Bengali or Tamil two-part vowel
    sign (U+09C7 + U+09BE: U+09CB)."""
    if c.isascii():
        return False  # no composition has an ASCII second character
    return nfc(chunk + c) != nfc(chunk) + nfc(c)


def _chunks(text: str) -> list[tuple[int, int]]:
    """``text`` cut before each starter (combining class 0) that does not compose with
    what comes before it: NFC of each chunk, joined, is the NFC of the text, and a chunk
    is as short as that allows (a span mapped back to the text takes whole chunks)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(text)):
        c = text[i]
        if unicodedata.combining(c) or _composes(text[start:i], c):
            continue
        bounds.append((start, i))
        start = i
    if text:
        bounds.append((start, len(text)))
    return bounds


def fold(text: str) -> Folded:
    """``text`` folded (module docstring), with the way back."""
    if text.isascii() or (unicodedata.is_normalized("NFC", text) and not _FOLDED.search(text)):
        return Folded(text)
    # Invisible characters go first, so that what they separated composes ("e", U+200B,
    # U+0301 is "é") and none is left in a chunk of its own marks.
    kept = [i for i, c in enumerate(text) if c not in _INVISIBLE]
    visible = "".join(text[i] for i in kept)
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _chunks(visible):
        folded = nfc(visible[start:end]).translate(_FULL_WIDTH)
        parts.append(folded)
        starts.extend([kept[start]] * len(folded))
        ends.extend([kept[end - 1] + 1] * len(folded))
    return Folded("".join(parts), starts, ends)


def fold_text(text: str) -> str:
    """Only the folded text of ``fold(text)`` (a glossary term is compared in it)."""
    return fold(text).text
