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
from bisect import bisect_right

__all__ = ["SentenceBuffer", "split_sentences"]

# Terminal punctuation (ASCII, ellipsis, CJK full stop / full-width ! and ?), then any
# closing quotes and brackets (ASCII, curly, guillemet, CJK corner brackets).
_CANDIDATE = re.compile("[.!?\u2026\u3002\uff01\uff1f]+[\"')\\]\u201d\u2019\u00bb\u300d\u300f]*|\n")
_CJK_TERMINAL = frozenset("\u3002\uff01\uff1f")
# Common in replies of an English-working-language bot; lower-case, without the period.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "no", "nr", "vs", "approx", "ca", "e.g", "i.e",
     "eg", "ie", "inc", "ltd", "co", "jr", "sr", "min", "max", "fig", "dept", "tel"}
)  # fmt: skip
_FENCE = "```"


class _Code:
    """Where code is in a text: sorted, non-overlapping [start, end) ranges."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        n, pos = len(text), 0
        # One left-to-right pass, linear in the text (a hostile run of backticks too).
        while (tick := text.find("`", pos)) != -1:
            if text.startswith(_FENCE, tick):
                close = text.find(_FENCE, tick + len(_FENCE))
                end = n + 1 if close == -1 else close + len(_FENCE)  # unclosed: to the end
            else:
                line_end = text.find("\n", tick)
                limit = n if line_end == -1 else line_end
                close = text.find("`", tick + 1, limit)
                if close == tick + 1:  # "``": not code
                    pos = close + 1
                    continue
                # A backtick not closed on its line may still be closed by text not
                # streamed yet: no boundary until the line ends (the same rule for a
                # complete text, so streaming and whole-text segmentation agree).
                end = (n + 1 if line_end == -1 else line_end) if close == -1 else close + 1
            self.starts.append(tick)
            self.ends.append(end)
            pos = end

    def __contains__(self, pos: int) -> bool:
        i = bisect_right(self.starts, pos) - 1
        return i >= 0 and pos < self.ends[i]


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _is_abbreviation(text: str, dot: int) -> bool:
    start = dot
    while (
        start > 0 and dot - start < 16 and text[start - 1].isascii() and text[start - 1].isalpha()
    ):
        start -= 1
    token = text[start:dot]
    if not token:
        return False
    if len(token) == 1 and token.isupper():
        return True  # an initial: "J. Smith"
    # "e.g." / "i.e.": the letter before the previous period counts too.
    if start >= 2 and text[start - 1] == "." and text[start - 2].isalpha():
        token = f"{text[start - 2]}.{token}"
    return token.lower() in _ABBREVIATIONS


def _boundary(text: str, code: _Code, start: int) -> tuple[int | None, int]:
    """End of the first complete segment of ``text`` (after its whitespace), or None;
    and where to resume looking next time (candidates before it were rejected for good:
    more text cannot change their verdict)."""
    for m in _CANDIDATE.finditer(text, start):
        end = m.end()
        if end >= len(text) and m.group() != "\n":
            return None, m.start()  # the next character decides (a quote may follow)
        if m.start() in code:
            continue
        if m.group() == "\n" or _CJK_TERMINAL.intersection(m.group()):
            return _skip_space(text, end), 0
        if not text[end].isspace():
            continue  # "3.14", "example.com", "?!x"
        if m.group() == "." and _is_abbreviation(text, m.start()):
            continue
        return _skip_space(text, end), 0
    return None, len(text)


class SentenceBuffer:
    """Accumulates streamed text and hands out complete segments.

    ``feed`` returns the segments completed by a delta (possibly none); ``flush``
    returns whatever is left once the stream has ended.
    """

    def __init__(self, max_chars: int = 400) -> None:
        self.max_chars = max_chars
        self._buffer = ""
        self._resume = 0  # candidates before this offset of the buffer were rejected

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        segments: list[str] = []
        while self._buffer:
            code = _Code(self._buffer)
            end, self._resume = _boundary(self._buffer, code, self._resume)
            if end is None:
                end = self._soft_cut(code)
            if end is None or end <= 0:
                break
            segments.append(self._buffer[:end])
            self._buffer = self._buffer[end:]
            self._resume = 0
        return segments

    def _soft_cut(self, code: _Code) -> int | None:
        if len(self._buffer) <= self.max_chars:
            return None
        cut = self._buffer.rfind(" ", 0, self.max_chars)
        while cut > 0 and cut in code:
            cut = self._buffer.rfind(" ", 0, cut)
        return _skip_space(self._buffer, cut) if cut > 0 else None

    def flush(self) -> str:
        rest, self._buffer, self._resume = self._buffer, "", 0
        return rest


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Split a complete text into segments (joined, they give back ``text``)."""
    buffer = SentenceBuffer(max_chars)
    segments = buffer.feed(text)
    rest = buffer.flush()
    if rest:
        segments.append(rest)
    return segments
