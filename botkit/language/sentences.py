"""Sentence segmentation for translation, incremental so a streamed reply can be
translated sentence by sentence while the rest is still being generated.

A segment ends after terminal punctuation followed by whitespace (``.``, ``!``, ``?``,
``…``, plus closing quotes/brackets), right after CJK full-width terminal punctuation
(U+3002, U+FF01, U+FF1F), or at a line break; never inside code (fenced or inline).
A period after a known abbreviation or a single capital (an initial) does not end a
sentence. A segment with no boundary is cut at a space once it grows past
``max_chars`` (translation models work on sentences of bounded length).

Segments keep their surrounding whitespace, so joining them gives back the text exactly.
"""

from __future__ import annotations

import re

__all__ = ["SentenceBuffer", "split_sentences"]

# Terminal punctuation (ASCII, ellipsis, CJK full stop / full-width ! and ?), then any
# closing quotes and brackets (ASCII, curly, guillemet, CJK corner brackets).
_CANDIDATE = re.compile("[.!?\u2026\u3002\uff01\uff1f]+[\"')\\]\u201d\u2019\u00bb\u300d\u300f]*|\n")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_CJK_TERMINAL = frozenset("\u3002\uff01\uff1f")
_WORD_BEFORE = re.compile(r"([A-Za-z]+)$")
# Common in replies of an English-working-language bot; lower-case, without the period.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "no", "nr", "vs", "approx", "ca", "e.g", "i.e",
     "eg", "ie", "inc", "ltd", "co", "jr", "sr", "min", "max", "fig", "dept", "tel"}
)  # fmt: skip
_FENCE = "```"


def _code_ranges(text: str) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    start = text.find(_FENCE)
    while start != -1:
        close = text.find(_FENCE, start + len(_FENCE))
        end = len(text) + 1 if close == -1 else close + len(_FENCE)  # unclosed: to the end
        ranges.append((start, end))
        if close == -1:
            break
        start = text.find(_FENCE, end)
    fenced = list(ranges)
    for m in _INLINE_CODE.finditer(text):
        if not any(s <= m.start() < e for s, e in fenced):
            ranges.append(m.span())
    return ranges


def _inside(pos: int, ranges: list[tuple[int, int]]) -> bool:
    return any(s <= pos < e for s, e in ranges)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _is_abbreviation(text: str, dot: int) -> bool:
    word = _WORD_BEFORE.search(text, 0, dot)
    if word is None:
        return False
    token = word.group(1)
    if len(token) == 1 and token.isupper():
        return True  # an initial: "J. Smith"
    # "e.g." / "i.e.": the letters before the previous period count too.
    before = text[max(0, word.start() - 2) : word.start()]
    if len(before) == 2 and before[1] == "." and before[0].isalpha():
        token = f"{before[0]}.{token}"
    return token.lower() in _ABBREVIATIONS


def _boundary(text: str, ranges: list[tuple[int, int]]) -> int | None:
    """End of the first complete segment of ``text`` (after its whitespace), or None."""
    for m in _CANDIDATE.finditer(text):
        if _inside(m.start(), ranges):
            continue
        end = m.end()
        if m.group() == "\n":
            return _skip_space(text, end)
        if end >= len(text):
            return None  # the next character decides (a closing quote may follow)
        if _CJK_TERMINAL.intersection(m.group()):
            return _skip_space(text, end)
        if not text[end].isspace():
            continue  # "3.14", "example.com", "?!x"
        if m.group() == "." and _is_abbreviation(text, m.start()):
            continue
        return _skip_space(text, end)
    return None


class SentenceBuffer:
    """Accumulates streamed text and hands out complete segments.

    ``feed`` returns the segments completed by a delta (possibly none); ``flush``
    returns whatever is left once the stream has ended.
    """

    def __init__(self, max_chars: int = 400) -> None:
        self.max_chars = max_chars
        self._buffer = ""

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        segments: list[str] = []
        while self._buffer:
            ranges = _code_ranges(self._buffer)
            end = _boundary(self._buffer, ranges)
            if end is None:
                end = self._soft_cut(ranges)
            if end is None or end <= 0:
                break
            segments.append(self._buffer[:end])
            self._buffer = self._buffer[end:]
        return segments

    def _soft_cut(self, ranges: list[tuple[int, int]]) -> int | None:
        if len(self._buffer) <= self.max_chars:
            return None
        cut = self._buffer.rfind(" ", 0, self.max_chars)
        while cut > 0 and _inside(cut, ranges):
            cut = self._buffer.rfind(" ", 0, cut)
        return _skip_space(self._buffer, cut) if cut > 0 else None

    def flush(self) -> str:
        rest, self._buffer = self._buffer, ""
        return rest


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Split a complete text into segments (joined, they give back ``text``)."""
    buffer = SentenceBuffer(max_chars)
    segments = buffer.feed(text)
    rest = buffer.flush()
    if rest:
        segments.append(rest)
    return segments
