"""Protected spans: parts of a text that must come out of translation unchanged.

Code (fenced and inline), URLs, e-mail addresses, numbers and order ids, and glossary
terms (product names) are replaced by numbered placeholders ``{0}``, ``{1}``... before
translation and put back afterwards. Placeholders are plain ASCII because sentencepiece
vocabularies of translation models keep braces and digits, and a chat model is told to
copy them.

Hostile and unlucky cases are handled on purpose:

* text that already looks like a placeholder (``{3}``, ``{ 3 }``) is itself protected,
  so after protection the only placeholder-like strings are ours;
* an unclosed code fence runs to the end of the text, as in CommonMark;
* a translator that drops or mangles a placeholder does not lose the span: every span
  not found in the translation is appended at its end; placeholders a translator
  invents are removed;
* every pattern is linear in the text length (anchored starts, possessive quantifiers),
  so a 4,000-character message of one repeated character costs microseconds;
* spans start and end at word edges of any script: a span never takes or leaves half of
  a word ("30-tägige" protects "30"; "Bot" is not found in "botón"). Scripts written
  without spaces (CJK, kana, Hangul, Thai...) have no such edges: "订单12345号"
  protects "12345".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from botkit.language._fold import fold, fold_text, nfc
from botkit.language._glossary_regex import glossary_pattern

__all__ = ["Glossary", "Protected", "detection_text", "protect", "restore"]

_PLACEHOLDER = "{{{}}}"
# Tolerant on purpose: translators add spaces, and a CJK target may write the braces
# full-width (U+FF5B/U+FF5D) like the rest of its punctuation. Bounded so a hostile run of
# digits never reaches int()'s 4300-digit limit.
_PLACEHOLDER_LIKE = re.compile(r"[{\uff5b]\s*(\d{1,6})\s*[}\uff5d]")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
# Stops at whitespace, quotes, angle brackets, CJK punctuation/full-width forms (a URL
# in Chinese text is often followed directly by 。) and Arabic punctuation (comma ،,
# semicolon ؛, question mark ؟, full stop U+06D4: written against the preceding word,
# so also against a URL).
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"'`\u3000-\u303f\uff00-\uffef\u060c\u061b\u061f\u06d4]++"
)
# Punctuation a URL is written against but rarely ends with; "…" (U+2026) too: a
# message cut short after a link ("http://exemple.fr/page.html…").
_URL_TRAILING = ".,;:!?'\"*_\u2026"
_OPENING = {")": "(", "]": "[", "}": "{"}
# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, CJK, kana) and
# Hangul, whose counters follow a number as their own word ("30일", "30日", "30天"): a
# number or a term next to one of these characters is at a word edge.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\u2fdf\u3005-\u3007"
    "\u3021-\u3029\u3031-\u3035\u3038-\u303c\u3040-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U00020000-\U0003ffff"
)
_IS_UNSPACED = re.compile(f"[{_UNSPACED}]")
# A character that continues a word: a digit of any script, a letter of a space-separated
# script (any of them, not only ASCII) or "_". Combining marks are not \w in Python: the
# few places where one could follow are checked with `_in_word` after matching.
_W = f"(?:\\d|[^\\W{_UNSPACED}])"
_NO_WORD_BEFORE = f"(?<!{_W})"
# Internationalized addresses too ("josé@münchen.de"); the local part is at a word edge.
_LABEL = f"(?:[^\\W_{_UNSPACED}]|-)++"
_EMAIL = re.compile(
    f"{_NO_WORD_BEFORE}(?<![.%+\\-])(?:{_W}|[.%+\\-])++@{_LABEL}(?:\\.{_LABEL})++(?!{_W})"
)
# Numbers and ids: 42, 12.50, 1,000, 10:30, #4521, ORD-2024-0042, #4521-B, A12-77, A12B,
# SKU_77, and units written against the number (5kg, 2x). After a hyphen or slash, only a
# part with a digit or a code (one letter, or capitals: "-B", "-XL") belongs to the id; a
# plain word is text to translate: "30-day", "24-hour", "30-tägige" protect the number
# only. (Combining diacritics are excluded after a code so "4-a\u0308..." is no code.)
_PART = f"[^\\W\\d{_UNSPACED}]*+\\d{_W}*+"  # a word with a digit: 2024, A12B, 5kg
_CODE = f"(?:[A-Z]{{2,}}+|[A-Za-z])(?!{_W}|[\u0300-\u036f])"
# Letter parts before the first part with a digit ("SKU-", "INV-EU-", any number of them).
# A run of them that ends in no digit ("a-a-a-...", 4,000 characters) was scanned to its
# end again from each hyphen (130 ms): such a run is matched whole as `letters`, which
# `_numbers` skips, so the scan resumes after it. Every start inside the run would have
# reached the same end and failed the same way, so the ids found are those of the plain
# pattern (bounding the parts to 8 instead lost the start of longer ids: "A-B-...-J-123").
_LETTER_PARTS = "(?:[A-Za-z]++[\\-_/])"
_NUMBER = re.compile(
    f"{_NO_WORD_BEFORE}#?(?:{_LETTER_PARTS}*+{_PART}"
    f"(?:[\\-/#](?:{_PART}|{_CODE})|[.,:]\\d{_W}*+)*+"
    f"|(?P<letters>{_LETTER_PARTS}++))"
)
# English ordinals are words ("2nd floor" -> "2.º piso"), not ids: left to the translator.
_ORDINAL = re.compile(r"\d++(?:st|nd|rd|th)", re.IGNORECASE)
_FENCE = "```"


class Glossary:
    """Terms never translated (product names), matched case-insensitively as whole words
    and whatever the Unicode normalization, width or zero-width characters of the terms
    and of the text (both are compared folded: ``botkit.language._fold``).

    Longer terms win over shorter ones they contain ("botkit Pro" over "botkit").
    """

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self.terms = tuple(dict.fromkeys(nfc(t.strip()) for t in terms if t.strip()))
        # Folded as the text is (``find_spans``): a term written full-width ("ＡＢＣマート")
        # or with a zero-width character in it matches the text in any of these forms.
        folded = list(dict.fromkeys(f for f in map(fold_text, self.terms) if f))
        # One trie-shaped pattern: linear in the text whatever the number of terms
        # (``_glossary_regex``; 1,000 terms cost 0.5 s per message as an alternation).
        self._pattern = glossary_pattern(folded, _W) if folded else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Matches of the terms in ``text`` (which must be folded to match every form)."""
        if self._pattern is not None:
            yield from self._pattern.finditer(text)


def _in_word(c: str) -> bool:
    """Whether ``c`` continues a word (see ``_W``; combining marks too)."""
    if c.isdecimal():
        return True
    if _IS_UNSPACED.match(c):
        return False
    return c.isalnum() or c == "_" or unicodedata.category(c).startswith("M")


def _at_edges(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` neither starts nor ends inside a word."""
    return not (
        (start > 0 and text[start].isalnum() and _in_word(text[start - 1]))
        or (end < len(text) and text[end - 1].isalnum() and _in_word(text[end]))
    )


def _numbers(text: str) -> Iterator[tuple[int, int]]:
    last = 0  # where the previous span ended: each character is looked at once at most
    for m in _NUMBER.finditer(text):
        start, end = m.span()
        if start < last or m.group("letters") is not None:
            continue
        # Only a combining mark can sit against a match (the pattern checks the rest):
        # the digits are written against a word ("5दिन"), which is protected whole
        # like "5kg".
        while start > last and _in_word(text[start - 1]):
            start -= 1
        while end < len(text) and _in_word(text[end]):
            end += 1
        last = end
        if not _ORDINAL.fullmatch(text, start, end):
            yield start, end


@dataclass(frozen=True, slots=True)
class Protected:
    """A text with its protected spans replaced by placeholders.

    Attributes:
        text: the text to translate, with ``{0}``, ``{1}``... in place of the spans.
        spans: the original spans; span ``i`` replaced placeholder ``{i}``.
    """

    text: str
    spans: tuple[str, ...]

    @property
    def needs_translation(self) -> bool:
        """False when nothing but spans, digits, symbols and spaces is left."""
        return any(c.isalpha() for c in self.text)


def _fences(text: str) -> Iterator[tuple[int, int]]:
    start = text.find(_FENCE)
    while start != -1:
        close = text.find(_FENCE, start + len(_FENCE))
        if close == -1:
            yield start, len(text)  # unclosed: code to the end (CommonMark)
            return
        end = close + len(_FENCE)
        yield start, end
        start = text.find(_FENCE, end)


def _trim_url(url: str) -> str:
    # Brackets counted once and kept up to date as the end is cut: counting them again
    # for each cut was quadratic ("http://x" and 4,000 ")" took 45 ms).
    counts = {c: url.count(c) for c in "()[]{}"}
    end = len(url)
    while end:
        last = url[end - 1]
        if last in _URL_TRAILING:
            end -= 1
        elif last in ")]}" and counts[last] > counts[_OPENING[last]]:
            counts[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def _candidates(text: str, glossary: Glossary | None) -> Iterator[tuple[int, int]]:
    """Candidate spans, highest priority first (an overlapping later one is dropped)."""
    yield from _fences(text)
    for m in _INLINE_CODE.finditer(text):
        yield m.span()
    for m in _URL.finditer(text):
        url = _trim_url(m.group())
        if len(url) > len("https://"):
            yield m.start(), m.start() + len(url)
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield m.span()
    for m in _PLACEHOLDER_LIKE.finditer(text):
        yield m.span()
    if glossary is not None:
        for m in glossary.finditer(text):
            if _at_edges(text, *m.span()):
                yield m.span()
    yield from _numbers(text)


def find_spans(text: str, glossary: Glossary | None = None) -> list[tuple[int, int]]:
    """Non-overlapping protected spans of ``text``, in text order.

    They are looked for in the text's NFC form without zero-width characters, and
    returned as ranges of ``text`` itself (``botkit.language._fold``).
    """
    folded = fold(text)
    # Claimed ranges are of the text itself: a folded character maps back to its whole
    # chunk (U+0958 folds to two characters, a backtick and the accent after it are one
    # chunk), so two spans that do not overlap in the folded text may in the original,
    # and protect() would then copy the shared part twice.
    claimed = bytearray(len(text))
    spans: list[tuple[int, int]] = []
    for start, end in _candidates(folded.text, glossary):
        if end <= start:
            continue
        start, end = folded.original(start, end)
        if not any(claimed[start:end]):
            claimed[start:end] = b"\x01" * (end - start)
            spans.append((start, end))
    spans.sort()
    return spans


def protect(text: str, glossary: Glossary | None = None) -> Protected:
    """Replace the protected spans of ``text`` by placeholders (see module docstring)."""
    parts: list[str] = []
    originals: list[str] = []
    pos = 0
    for start, end in find_spans(text, glossary):
        parts.append(text[pos:start])
        parts.append(_PLACEHOLDER.format(len(originals)))
        originals.append(text[start:end])
        pos = end
    parts.append(text[pos:])
    return Protected("".join(parts), tuple(originals))


def restore(translated: str, protected: Protected) -> str:
    """Put the spans back into a translation of ``protected.text``.

    Spans whose placeholder the translator lost are appended (separated by a space), so
    a URL or an order number is never dropped; placeholders it invented are removed.
    """
    spans = protected.spans
    used: set[int] = set()

    def put_back(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index >= len(spans):
            return ""
        used.add(index)
        return spans[index]

    result = _PLACEHOLDER_LIKE.sub(put_back, translated)
    missing = [span for i, span in enumerate(spans) if i not in used]
    if missing:
        tail = len(result) - len(result.rstrip())
        body, trailing = result[: len(result) - tail], result[len(result) - tail :]
        result = " ".join(p for p in (body, *missing) if p) + trailing
    return result


def detection_text(text: str, glossary: Glossary | None = None) -> str:
    """``text`` without its protected spans (each replaced by a space), for the language
    detector: URLs, code and product names say nothing about the customer's language."""
    parts: list[str] = []
    pos = 0
    for start, end in find_spans(text, glossary):
        parts.append(text[pos:start])
        parts.append(" ")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)
