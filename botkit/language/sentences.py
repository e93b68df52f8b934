"""Sentence segmentation for translation, incremental so a streamed reply can be
translated sentence by sentence while the rest is still being generated.

A segment ends after terminal punctuation followed by whitespace (``.``, ``!``, ``?``,
``…``, the Arabic question mark U+061F, plus closing quotes/brackets), right after a
terminal that needs no space after it (CJK full stop and full-width ! and ?, the Urdu
full stop U+06D4, Devanagari dandas U+0964/5, the Armenian full stop U+0589, Ethiopic
U+1362, Myanmar U+104B: scripts that may put none there), after ASCII ``!``/``?``
directly followed by a CJK character (Chinese typed with half-width punctuation), or at
a line break; never inside code (fenced or inline).
A period after a known abbreviation or a single capital (an initial) does not end a
sentence; "a.m." / "p.m." end one only before a capital (see ``_boundary``).

Translation models work on sentences of bounded length (a source past the model's limit
is truncated), so a segment that would run past ``max_chars`` is cut earlier, at the last
whitespace or clause mark (CJK and ASCII commas, semicolons, full-width colon) in its
first ``max_chars`` characters, else after as many characters as possible (text with
neither: Thai, Chinese written without commas). Such a cut leaves a lookahead of up to
32 characters before ``max_chars`` (see ``_LOOKAHEAD``), never falls inside code or a
protected span (URL, number, placeholder, glossary term) and never separates a character
from its combining marks (nor a surrogate pair, a ZWJ sequence, a virama conjunct). Only
a span or code block longer than that makes a longer segment.

Streaming and whole-text splitting give the same segments: a cut is made only once no
later text can change it (a cut before ``max_chars`` is decided from the first
``max_chars + 1`` characters alone; a sentence end waits for the next non-space
character).

Segments keep their surrounding whitespace, so joining them gives back the text exactly.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from typing import Final

from botkit.language.protect import Glossary, find_spans

__all__ = ["SentenceBuffer", "split_sentences"]

# Terminals that end a sentence even with no space after them: CJK full stop and
# full-width ! and ?, Arabic full stop (Urdu), Devanagari danda and double danda,
# Armenian full stop, Ethiopic full stop, Myanmar section mark.
_UNSPACED_TERMINALS = "\u3002\uff01\uff1f\u06d4\u0964\u0965\u0589\u1362\u104b"
# Terminal punctuation (ASCII, ellipsis, Arabic question mark, the above), then any
# closing quotes and brackets (ASCII, curly, guillemet, CJK corner brackets).
_CLOSERS = "\"')]\u201d\u2019\u00bb\u300d\u300f"
_CANDIDATE = re.compile(f"[.!?\u2026\u061f{_UNSPACED_TERMINALS}]+[{re.escape(_CLOSERS)}]*|\n")
_UNSPACED = frozenset(_UNSPACED_TERMINALS)
# Han, kana, Hangul: after "!" or "?" one of these starts a new sentence ("你好!我的订单").
_CJK_START = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
# Common in replies of an English-working-language bot; lower-case, without the period.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "no", "nr", "vs", "approx", "ca", "e.g", "i.e",
     "eg", "ie", "inc", "ltd", "co", "jr", "sr", "min", "max", "fig", "dept", "tel"}
)  # fmt: skip
_TIMES = frozenset({"a.m", "p.m"})
_SPACES = re.compile(r"\s*")
_FENCE = "```"
# Where a too-long segment may be cut when it has no sentence end: after these (CJK
# comma, ideographic comma, full-width semicolon and colon, ASCII comma and semicolon).
_CLAUSE_MARKS = frozenset("\uff0c\u3001\uff1b,;\uff1a")
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")
_UNKNOWN: Final = -1
# A cut for max_chars is decided from the first max_chars + 1 characters (so that
# streaming and whole-text splitting agree) but made this many characters (at most a
# quarter of max_chars) before their end: whether a cut falls inside a span can depend on
# text after it ("https://" seen whole, the "@example.com" after a local part, the digit
# after "ORD-").
_LOOKAHEAD = 32


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

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))


def _skip_space(text: str, pos: int) -> int:
    match = _SPACES.match(text, pos)
    return pos if match is None else match.end()


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


def _is_time(text: str, dot: int) -> bool:
    """Whether the period at ``dot`` ends "a.m." or "p.m." (any case)."""
    return (
        dot >= 3
        and text[dot - 3 : dot].lower() in _TIMES
        and (dot == 3 or not text[dot - 4].isalpha())
    )


def _boundary(text: str, code: _Code, start: int) -> tuple[int | None, int, int]:
    """The first segment end of ``text`` (after its whitespace), or None when there is
    none yet; where to resume looking next time (candidates before it were rejected for
    good: more text cannot change their verdict); and where the punctuation of that end
    (or of the candidate still waiting for more text) ends, ``len(text) + 1`` when
    there is no candidate: no later end can come before it."""
    for m in _CANDIDATE.finditer(text, start):
        end = m.end()
        if end >= len(text) and m.group() != "\n":
            return None, m.start(), end  # the next character decides (a quote may follow)
        if m.start() in code:
            continue
        cut = _skip_space(text, end)
        if cut >= len(text):
            return None, m.start(), end  # the whitespace may go on in the next delta
        if m.group() == "\n" or _UNSPACED.intersection(m.group()):
            return cut, 0, end
        if not text[end].isspace():
            terminal = m.group().rstrip(_CLOSERS)[-1]
            if terminal in "!?" and _CJK_START.match(text, end):
                return cut, 0, end  # "你好!我的订单在哪里?谢谢"
            continue  # "3.14", "example.com", "?!x"
        if m.group() == "." and _is_time(text, m.start()):
            # "a.m." / "p.m." end a sentence only before a capitalized word: "from 9 a.m.
            # to 5 p.m. on weekdays" stays whole (the common case: opening hours), "at 9
            # a.m. Call us then." is cut. A word in capitals is no new sentence ("9 A.M.
            # TO 5 P.M.", "9 a.m. CET"); "at 9 a.m. Monday to Friday" is cut: a capital
            # after a time starts a new sentence more often than it starts a name.
            if cut + 1 >= len(text):
                return None, m.start(), end  # "I" or "IT"? the next character decides
            if text[cut].isupper() and not text[cut + 1].isupper():
                return cut, 0, end
            continue
        if m.group() == "." and _is_abbreviation(text, m.start()):
            continue
        return cut, 0, end
    return None, len(text), len(text) + 1


def _splits_character(text: str, pos: int) -> bool:
    """Whether cutting ``text`` before ``pos`` separates parts of one user-perceived
    character (an approximation of Unicode's extended grapheme clusters, UAX #29)."""
    before, after = text[pos - 1], text[pos]
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return True  # a surrogate pair (text decoded with "surrogatepass")
    if (before, after) == ("\r", "\n") or "\u200c" <= before <= "\u200d":
        return True  # CR LF; after a zero-width (non-)joiner (emoji ZWJ sequences)
    if unicodedata.category(after)[0] == "M" or "\u200c" <= after <= "\u200d":
        return True  # combining marks, variation selectors, Indic vowel signs
    if "\U0001f3fb" <= after <= "\U0001f3ff" or "\U000e0020" <= after <= "\U000e007f":
        return True  # emoji skin tone modifiers, emoji tag sequences (flags)
    if "\U0001f1e6" <= before <= "\U0001f1ff" and "\U0001f1e6" <= after <= "\U0001f1ff":
        return True  # regional indicators (flags)
    if after in "\u0e33\u0eb3" or "\u1160" <= after <= "\u11ff" or "\ud7b0" <= after <= "\ud7ff":
        return True  # Thai/Lao SARA AM (a spacing mark), Hangul medial/final jamo
    if "\u0e40" <= before <= "\u0e44" or "\u0ec0" <= before <= "\u0ec4":
        return True  # a Thai/Lao leading vowel is written before its consonant
    return unicodedata.combining(before) == 9  # a virama joins the next consonant


def _fallback_cut(window: str, limit: int, glossary: Glossary | None) -> int | None:
    """Where to cut a text of which ``window`` (``limit + 1`` characters) is the start,
    when no sentence ends within ``limit`` characters; None when every cut would fall
    inside code or a protected span."""
    reach = limit - min(_LOOKAHEAD, limit // 4)
    blocked = bytearray(reach + 1)  # blocked[p]: no cut between window[p - 1] and [p]
    for start, end in [*_Code(window).ranges(), *find_spans(window, glossary)]:
        # A span that reaches the end of the window may go on past it.
        stop = reach + 1 if end >= len(window) else min(end, reach + 1)
        blocked[start + 1 : stop] = b"\x01" * max(0, stop - start - 1)
    usable = [
        p for p in range(reach, 0, -1) if not blocked[p] and not window[p - 1] == "`" == window[p]
    ]  # "``" + "`" is a fence
    whole = [p for p in usable if not _splits_character(window, p)]
    for p in whole:
        c = window[p - 1]
        if (c.isspace() and c not in _NO_BREAK_SPACES) or c in _CLAUSE_MARKS:
            return p
    if whole:
        return whole[0]
    # Only a hostile run of combining marks longer than `limit` gets here.
    return next((p for p in usable if not "\udc00" <= window[p] <= "\udfff"), None)


class SentenceBuffer:
    """Accumulates streamed text and hands out complete segments.

    ``feed`` returns the segments completed by a delta (possibly none); ``flush``
    returns whatever is left once the stream has ended.

    Args:
        max_chars: longest segment (see the module docstring for the exceptions).
        glossary: terms a cut at ``max_chars`` must not split.
    """

    def __init__(self, max_chars: int = 400, *, glossary: Glossary | None = None) -> None:
        self.max_chars = max_chars
        self.glossary = glossary
        self._buffer = ""
        self._resume = 0  # candidates before this offset of the buffer were rejected
        # The fallback cut of the buffer's first max_chars + 1 characters, once they are
        # known (they only change when a segment is cut off).
        self._window_cut: int | None = _UNKNOWN

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        segments: list[str] = []
        while self._buffer and (end := self._next_end()) is not None:
            segments.append(self._buffer[:end])
            self._buffer = self._buffer[end:]
            self._resume, self._window_cut = 0, _UNKNOWN
        return segments

    def _next_end(self) -> int | None:
        text, limit = self._buffer, self.max_chars
        end, self._resume, mark_end = _boundary(text, _Code(text), self._resume)
        if mark_end <= limit or len(text) <= limit or limit < 1:
            return end  # a sentence end within the limit, or maybe one still to come
        if self._window_cut == _UNKNOWN:
            self._window_cut = _fallback_cut(text[: limit + 1], limit, self.glossary)
        return end if self._window_cut is None else self._window_cut

    def flush(self) -> str:
        rest, self._buffer, self._resume = self._buffer, "", 0
        self._window_cut = _UNKNOWN
        return rest


def split_sentences(
    text: str, max_chars: int = 400, *, glossary: Glossary | None = None
) -> list[str]:
    """Split a complete text into segments (joined, they give back ``text``)."""
    buffer = SentenceBuffer(max_chars, glossary=glossary)
    segments = buffer.feed(text)
    rest = buffer.flush()
    if rest:
        segments.append(rest)
    return segments
