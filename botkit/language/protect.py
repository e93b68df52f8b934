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
  so a 4,000-character message of one repeated character costs microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Glossary", "Protected", "detection_text", "protect", "restore"]

_PLACEHOLDER = "{{{}}}"
# Tolerant on purpose (translators add spaces); bounded so a hostile run of digits never
# reaches int()'s 4300-digit limit.
_PLACEHOLDER_LIKE = re.compile(r"\{\s*(\d{1,6})\s*\}")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
# Stops at whitespace, quotes, angle brackets, CJK punctuation/full-width forms (a URL
# in Chinese text is often followed directly by 。) and Arabic punctuation (comma ،,
# semicolon ؛, question mark ؟, full stop U+06D4: written against the preceding word,
# so also against a URL).
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"'`\u3000-\u303f\uff00-\uffef\u060c\u061b\u061f\u06d4]++"
)
_URL_TRAILING = ".,;:!?'\"*_"
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]++@[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)++"
)
# Numbers and ids: 42, 12.50, 1,000, 10:30, #4521, ORD-2024-0042, A12B, SKU_77.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_])#?(?:[A-Za-z]++[\-_/])*+[A-Za-z]*+\d(?:[A-Za-z_\-/#]|\d|[.,:](?=\d))*+"
)
_FENCE = "```"


class Glossary:
    """Terms never translated (product names), matched case-insensitively as whole words.

    Longer terms win over shorter ones they contain ("botkit Pro" over "botkit").
    """

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self.terms = tuple(dict.fromkeys(t.strip() for t in terms if t.strip()))
        parts = [_term_pattern(t) for t in sorted(self.terms, key=len, reverse=True)]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Matches of the terms in ``text``."""
        if self._pattern is not None:
            yield from self._pattern.finditer(text)


def _term_pattern(term: str) -> str:
    def edge(c: str, lookahead: bool) -> str:
        if not c.isalnum():
            return ""  # "C++": no word boundary after a symbol
        cls = "[A-Za-z0-9]" if c.isascii() else r"\w"
        return f"(?!{cls})" if lookahead else f"(?<!{cls})"

    return edge(term[0], False) + re.escape(term) + edge(term[-1], True)


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
    while url:
        last = url[-1]
        if last in _URL_TRAILING:
            url = url[:-1]
        elif last in ")]}" and url.count(last) > url.count({")": "(", "]": "[", "}": "{"}[last]):
            url = url[:-1]
        else:
            break
    return url


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
            yield m.span()
    for m in _NUMBER.finditer(text):
        yield m.span()


def find_spans(text: str, glossary: Glossary | None = None) -> list[tuple[int, int]]:
    """Non-overlapping protected spans of ``text``, in text order."""
    claimed = bytearray(len(text))
    spans: list[tuple[int, int]] = []
    for start, end in _candidates(text, glossary):
        if end > start and not any(claimed[start:end]):
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
