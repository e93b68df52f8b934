"""Runs of lines that CommonMark can only read as paragraphs, headings and one-line
comments, found by one regular expression instead of markdown-it's block rules.

markdown-it-py tries ten block rules in pure Python on every line: on the
10,000-passage benchmark (headings and paragraphs of prose) reading 3.1 MB took 0.35 s
of CPU where a hand-written line reader took 0.10 to 0.17 s, and 5 MB with a heading on
each line 4.9 s. Most help pages are mostly such lines, so ``_commonmark`` reads a file
whose every line is simple without markdown-it's block rules, and lets markdown-it skip
each run of simple blocks between the others.

A line is simple when, after at most three spaces, it is

* an ATX heading: ``#`` to ``######`` then a space, a tab or the line's end;
* a paragraph's line: it starts with a character that starts no other block there:
  not a space or tab (four columns in are code after a blank line but a paragraph's
  line after text, and markdown-it ends a link definition before them), ``>``, ``<``,
  a list marker (``-``, ``+``, ``*`` then a space, ``1.`` ``1)`` to nine digits), a
  rule or underline (a line of ``-``, ``*``, ``_`` or ``=`` and spaces), or three
  backticks or tildes (a fence). A ``#`` line that is no heading (``#tag``, seven
  ``#``) is text;
* a setext heading's underline (``===``, ``---``) right after a paragraph that does not
  start with ``[`` (markdown-it reads a link definition there first, and the
  underline is then a paragraph or a rule);
* an HTML block of one line: it starts ``<!--`` and has a ``-->``;
* blank (spaces and tabs only).

A run of them is whole blocks only where its last paragraph ends before a blank line,
a heading, a ``<!--`` line or the end: a paragraph continues into any other line (a
``===`` under it makes it a heading), so one followed by another line is left to
markdown-it. Where blocks start at the top level, CommonMark reads a run of whole
simple blocks the same whatever came before it: nothing is open there (a fence, an
HTML block, a list and a quote have ended, or the line would be theirs). Link
definitions (``[a]: /url``) are read as paragraphs: neither holds a heading or code,
and nothing that would read differently after one follows in a run. But a ``<!--``
in a link definition is no comment and markdown-it makes no token of one, so in a
file with a ``<!--`` a paragraph starting ``[`` is left to markdown-it. Random line
sequences are compared with a whole markdown-it parse (headings, code blocks and
comments) in ``tests/botkit/knowledge/test_simple.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["run_blocks_with", "run_headings", "simple_run"]

_HEADING = r" {0,3}#{1,6}(?:[ \t][^\n]*)?\n"
# The first character of a paragraph's line, after at most three spaces (module
# docstring). Each lookahead reads its own line only.
_FIRST = "(?:" + "|".join([
    r"[^#>\-+*=_`~<0-9 \t\n]",
    r"#(?!#{0,5}[ \t\n])",  # "#tag", "#######"
    r"\*(?![ \t\n])(?=[^\n]*[^*\n \t])",  # "*word*": no list item, no rule
    r"-(?![ \t\n])(?=[^\n]*[^\-\n \t])",  # "-5 °C": no list item, rule or underline
    r"\+(?![ \t\n])",
    r"_(?=[^\n]*[^_\n \t])",
    r"=(?=[^\n]*[^=\n \t])",
    r"(?![0-9]{1,9}[.)][ \t\n])[0-9]",  # "2024 was": no ordered list item
    r"`(?!``)",  # no fence
    r"~(?!~~)",
]) + ")"  # fmt: skip


_UNDERLINE = r" {0,3}(?:=+|-+)[ \t]*\n"
# An HTML block of one line: it starts "<!--" and has a "-->" ("<!-->" does).
_COMMENT = r" {0,3}(?=<!--)(?=[^\n]*-->)[^\n]*\n"


def _run(definitions: bool) -> re.Pattern[str]:
    # Possessive throughout: every line is read once, a paragraph that does not end
    # where a block may start is given up whole (read twice: with an underline, then
    # without).
    line = rf" {{0,3}}{_FIRST}[^\n]*\n"
    setext = rf"(?! {{0,3}}\[){line}(?:{line})*+{_UNDERLINE}"  # no link definition
    paragraph = rf"(?:{line})++(?=[ \t]*\n|{_HEADING}| {{0,3}}<!--|\Z)"  # "<!--" ends it
    if not definitions:
        paragraph = rf"(?! {{0,3}}\[){paragraph}"
    return re.compile(rf"(?:[ \t]*\n|{_HEADING}|{setext}|{paragraph}|{_COMMENT})*+")


_RUN = _run(definitions=True)
# A "<!--" in a link definition is no comment, and markdown-it makes no token of one.
_RUN_COMMENTED = _run(definitions=False)
# The lines of a run that end a block: in a run, "===" and "---" are underlines, and a
# line starting "<" a comment's.
_MARK = re.compile(
    r"^(?: {0,3}(#{1,6})(?:[ \t][^\n]*)?\n|[ \t]*\n| {0,3}([=-])\2*[ \t]*\n| {0,3}(<)[^\n]*\n)",
    re.M,
)


def simple_run(src: str, start: int, comments: bool) -> int:
    """Where the longest run of whole simple blocks from ``start`` (a line's start in
    ``src``, where a top-level block starts) ends: ``start`` when there is none. Lines
    end at ``\\n``, the last one too. With ``comments`` (``src`` has a ``<!--``), a
    paragraph starting ``[`` (a link definition's may) is not simple."""
    match = (_RUN_COMMENTED if comments else _RUN).match(src, start)
    return match.end() if match is not None else start


def run_headings(src: str, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """First line, end line and level of each heading in a run of simple blocks,
    ``src[start:end]``, the lines counted from ``start``'s."""
    line, position = 0, start  # the line at position
    paragraph = 0  # the line the paragraph being read would start on
    for match in _MARK.finditer(src, start, end):
        line += src.count("\n", position, match.start())
        position = match.start()
        if match.group(1):
            yield line, line + 1, len(match.group(1))
        elif match.group(2):
            yield paragraph, line + 1, 1 if match.group(2) == "=" else 2
        paragraph = line + 1


def run_blocks_with(src: str, start: int, end: int, needle: str) -> Iterator[tuple[int, int, bool]]:
    """Each block in a run of simple blocks, ``src[start:end]``, that holds ``needle``: its
    first line's start, its last line's end, and whether it is an HTML block (a
    comment's line) rather than a paragraph (a setext heading's underline included) or
    an ATX heading."""
    paragraph = start  # where the paragraph being read would start
    for match in _MARK.finditer(src, start, end):
        if match.group(2):  # an underline ends its heading
            blocks: tuple[tuple[int, int, bool], ...] = ((paragraph, match.end(), False),)
        elif match.group(1) or match.group(3):  # ends the paragraph, and is a block
            line = (match.start(), match.end(), match.group(3) is not None)
            blocks = ((paragraph, match.start(), False), line)
        else:  # a blank line
            blocks = ((paragraph, match.start(), False),)
        for first, after, html in blocks:
            if first < after and src.find(needle, first, after) != -1:
                yield first, after - 1, html  # its line break left out
        paragraph = match.end()
    if paragraph < end and src.find(needle, paragraph, end) != -1:
        yield paragraph, end - 1, False
