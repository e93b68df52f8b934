"""What a Markdown file of the knowledge base is made of, as its one CommonMark parse
(``_commonmark``) finds it, and the bits read from its lines by hand: YAML front matter,
which is no Markdown (the parse starts after it), and a heading's title, from its lines
without their comments.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Sequence
from typing import NamedTuple

__all__ = ["Heading", "Markdown", "Uncommented", "front_matter"]

# A front matter line "key: value": a one-word key (YAML allows more, front matter
# uses these), a colon, then a space or nothing.
_META_KEY = re.compile(r"([^\W\d][\w.:-]*?)[ \t]*:(?:[ \t]|$)")
_SPACES = " \t"  # CommonMark's spaces around an ATX heading's text


def front_matter(lines: Sequence[str]) -> tuple[int, dict[str, str]]:
    """The first line after a YAML front matter block (0 when there is none), and its
    top-level ``key: value`` pairs (quotes removed; nested YAML is not read).

    A file may also start with a horizontal rule (``---``), which looks the same: the
    block between the first two ``---`` lines is front matter only when it reads as
    such, every line blank, a ``# comment``, ``key: value`` (the key one word, as in
    ``url``, ``last_modified``, ``og:title``), or after a key an indented line or a
    ``- item`` (the key's nested value). Anything else (a sentence) makes it text.
    """
    if not lines or lines[0].strip() != "---":
        return 0, {}
    meta: dict[str, str] = {}
    keyed = False
    for number in range(1, min(len(lines), 200)):
        line = lines[number]
        if line.strip() in ("---", "..."):
            return number + 1, meta
        if not line.strip() or line.startswith("#"):
            continue
        if keyed and (line[0] in " \t" or line == "-" or line.startswith("- ")):
            continue  # a nested value
        key = _META_KEY.match(line)
        if key is None:
            return 0, {}  # not YAML: the file starts with a rule
        keyed = True
        meta[key.group(1).lower()] = line[key.end() :].strip().strip("'\"")
    return 0, {}


class Heading(NamedTuple):
    """A heading at the top level of a Markdown file.

    Attributes:
        first: its first line (0-based).
        end: the line after it (after a setext heading's underline).
        level: 1 to 6 (a setext ``===`` heading is 1, ``---`` 2).
        title: its text, comments removed and spaces collapsed ("" for ``#`` alone).
    """

    first: int
    end: int
    level: int
    title: str


class Markdown(NamedTuple):
    """What the parse of one Markdown file gives.

    Attributes:
        lines: the file's lines (at ``\\n``; ``\\r\\n`` and ``\\r`` are line ends too),
            HTML comments removed but their line breaks kept.
        unclosed: the line (1-based) of each ``<!--`` never closed, the first in its
            paragraph or HTML block (any later one there is text as well).
        body: the first line after the front matter (0 when there is none).
        meta: the front matter's top-level ``key: value`` pairs.
        heading_marks: first line, end line and level of each top-level heading, flat
            (``headings()``): 24 bytes a heading where a ``Heading`` and its title
            take some 180, and a hostile 5 MB file has 450,000 headings.
        code_marks: first and end line of each code block, flat (``code_blocks()``).
    """

    lines: list[str]
    unclosed: tuple[int, ...]
    body: int
    meta: dict[str, str]
    heading_marks: array[int]
    code_marks: array[int]

    def headings(self) -> Iterator[Heading]:
        """The top-level headings, in order."""
        marks = self.heading_marks
        for index in range(0, len(marks), 3):
            first, end, level = marks[index : index + 3]
            yield Heading(first, end, level, _title(self.lines, first, end))

    def code_blocks(self) -> Iterator[tuple[int, int]]:
        """``(first, end)`` lines of each code block (fenced or indented), in order."""
        marks = self.code_marks
        for index in range(0, len(marks), 2):
            yield marks[index], marks[index + 1]


class Uncommented(NamedTuple):
    """A text without its HTML comments.

    Attributes:
        text: the text, comments removed (their line breaks kept).
        unclosed: the line (1-based) of each ``<!--`` never closed (``Markdown``).
    """

    text: str
    unclosed: tuple[int, ...]


def _title(lines: list[str], first: int, end: int) -> str:
    """The text of the heading on ``lines[first:end]``, read from the lines without
    their comments (markdown-it's inline token has them) as markdown-it's heading rules
    read it."""
    if end - first > 1:  # setext: its lines, then the underline
        words = " ".join(lines[first : end - 1])
    else:
        words = lines[first].lstrip(" ").lstrip("#")
        text = words.rstrip(_SPACES)
        closing = text.rstrip("#")
        # The optional closing sequence ("## Title ##") follows a space or the opening.
        if closing != text and (not closing or closing[-1] in _SPACES):
            words = closing
    return " ".join(words.split())
