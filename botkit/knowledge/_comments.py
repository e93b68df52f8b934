"""HTML comments in Markdown, found by a CommonMark parser (markdown-it-py).

Comments (``<!-- editors' notes -->``) must never reach the model, while a ``<!--``
that the rendered page shows (in `` `code` ``, in a code block, after a backslash) is
text like any other. Which one a ``<!--`` is depends on the blocks around it: four
spaces make an indented code block at the top of a file but a paragraph's next line
inside a list item. So markdown-it reads the blocks (paragraphs, headings, HTML blocks,
fenced and indented code, in quotes and list items), and then

* in an HTML block, ``<!--`` opens a comment and the first ``-->`` closes it
  (``<!-->`` and ``<!--->`` are whole, empty comments), as in CommonMark 0.31 and
  browsers;
* in a paragraph or heading, markdown-it's inline rules for backslash escapes, code
  spans and raw HTML (tags; comments as in an HTML block) read its lines left to
  right, whichever starts first wins. They read the lines as the file has them, quote
  markers and list indentation included: those hold no `` ` ``, ``\\`` or ``<``, so
  they change nothing. The other inline rules cannot make or hide a comment (raw HTML
  comes before links and emphasis), except in a link's address or title, where
  CommonMark reads ``<!--...-->`` as part of the address: here it is removed as a
  comment;
* in code, ``<!--`` is text.

A ``<!--`` that nothing closes in its paragraph or HTML block is text on the rendered
page: it stays as written, and its line is reported. A removed comment leaves its line
breaks, so passages keep their line numbers. Front matter is not Markdown and is left
as it is (``front_matter`` keeps it out of the passages).

Cost: a file without ``<!--`` is not parsed. Otherwise the parse is linear, but
markdown-it-py is pure Python: measured on the 2-core machine, 10 to 30 µs a block or
line and about 350 bytes a block token; 5 MB of list items parsed whole took 40 s and
2 GB. So the tokens of each top-level block are read and dropped as the parse goes, and
a file is refused (``MarkdownLimit``) past ``MAX_LINES`` lines, ``MAX_TOKENS`` tokens
in one list or quote, or ``MAX_QUOTED`` lines in quotes (a quote copies its lines'
positions for each level). markdown-it stops reading quotes and lists nested 20 levels
deep (a quote is one, a list two); a ``<!--`` there refuses the file too, rather than
showing what may be a note.
"""

from __future__ import annotations

import io
import re
from typing import NamedTuple

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline, backtick, escape, html_inline
from markdown_it.token import Token

from botkit.knowledge._markdown import front_matter

__all__ = [
    "MAX_LINES",
    "MAX_QUOTED",
    "MAX_TOKENS",
    "MarkdownLimit",
    "Uncommented",
    "without_comments",
]

# Sizes measured on the 2-core machine. 500,000 lines: ~50 MB of markdown-it's line
# positions; at its slowest, a heading with a comment on each line, 5 MB (333,000
# lines) took 2.6 s.
MAX_LINES = 500_000
# One list or quote of 100,000 block tokens (some 20,000 items): ~35 MB, 0.6 s.
MAX_TOKENS = 100_000
# A line in quotes nested 3 deep counts 3 times: ~80 MB, 0.5 s.
MAX_QUOTED = 1_000_000

# Inline text up to a character one of the kept inline rules reads ("<" only where a
# tag or comment may start). Possessive: a plain "+" keeps a backtracking entry per
# character (600 MB for 5 MB of "<").
_PLAIN = re.compile(r"(?:[^\\`<]|<(?![!?/A-Za-z]))++")
# Blocks whose contents markdown-it reads one level deeper.
_CONTAINERS = frozenset({"blockquote_open", "list_item_open"})


class MarkdownLimit(Exception):
    """A Markdown file is too big or too deeply nested to find its HTML comments in, or
    the parser fails on it (the message says where and why)."""


class Uncommented(NamedTuple):
    """A text without its HTML comments.

    Attributes:
        text: the text, comments removed (their line breaks kept).
        unclosed: the line (1-based) of each ``<!--`` never closed, the first in its
            paragraph or HTML block (any later one there is text as well).
    """

    text: str
    unclosed: tuple[int, ...]


def without_comments(text: str) -> Uncommented:
    """``text`` without HTML comments outside code (module docstring); ``\\r\\n`` and
    ``\\r`` become ``\\n``.

    An unclosed ``<!--`` and the text after it stay: dropping the rest of a page
    because of one stray marker would hide it without a word, so the caller reports
    the line instead.

    Raises:
        MarkdownLimit: over ``MAX_LINES`` lines, ``MAX_TOKENS`` in a list or quote,
            ``MAX_QUOTED`` lines in quotes, a ``<!--`` nested too deep to read, or the
            parser failed.
    """
    if "<!--" not in text:
        return Uncommented(text, ())
    if "\r" in text:
        text = re.sub(r"\r\n?", "\n", text)
    start = 0
    if text.lstrip().startswith("---"):
        first, _ = front_matter(text.splitlines())
        start = sum(map(len, text.splitlines(keepends=True)[:first]))
    skipped = text.count("\n", 0, start)
    lines = skipped + text.count("\n", start) + 1
    if lines > MAX_LINES:
        raise MarkdownLimit(
            f"{lines:,} lines, over the {MAX_LINES:,} a Markdown file with HTML comments "
            "(<!--) may have (split it)"
        )
    reader = _Reader(text[start:], skipped)
    return Uncommented(text[:start] + reader.read(), reader.unclosed_lines())


class _Reader:
    """The comments of one Markdown text, removed while markdown-it reads its blocks."""

    def __init__(self, body: str, skipped: int) -> None:
        self.body = body
        self.skipped = skipped  # lines before the body (front matter)
        self.out = io.StringIO()  # the body without comments, up to ...
        self.copied = 0  # ... this offset in it
        self.unclosed: list[int] = []  # offsets of the unclosed "<!--"
        self.leaf = 0  # the offset of the paragraph being read
        self.block_line = 0  # the line the top-level block being read starts on
        self.quote_ends: dict[int, int] = {}  # the quote being read at each level
        self.quoted = 0  # lines of quotes read, once per level
        md = MarkdownIt("commonmark")
        # The block rules only: inline rules run on the blocks with a "<!--" (_take).
        md.core.ruler.enableOnly(["normalize", "block"])
        md.block.ruler.before("table", "botkit_comments", self._before_block)
        # Only the inline rules that decide what a "<!--" is, and silent: no tokens (a
        # paragraph of 100,000 code spans would be 100,000 of them), only positions.
        md.inline.ruler.enableOnly(["text", "escape", "backticks", "html_inline"])
        md.inline.ruler.at("text", _plain)
        md.inline.ruler.at("escape", lambda state, _: escape(state, True))
        md.inline.ruler.at("backticks", lambda state, _: backtick(state, True))
        md.inline.ruler.at("html_inline", self._html_inline)
        md.inline.ruler.push("botkit_any", _any)  # else a pending character each
        self.md = md
        self.state: StateBlock | None = None  # markdown-it's, once a block is read

    def read(self) -> str:
        """The body without its comments."""
        # markdown-it-py indexes past the end of a text whose last line is a quote's
        # ">" (IndexError on ">1. <!--\n>"; its issues #185, #204, #415): a line break
        # at the end gives it a character there, and changes nothing else.
        try:
            tokens = self.md.parse(self.body + "\n")
        except (IndexError, RuntimeError) as exc:  # another of its bugs: this file only
            raise MarkdownLimit(
                f"the Markdown parser (markdown-it-py) failed on it ({exc!r}), so its HTML "
                "comments (<!--) cannot be told from text"
            ) from exc
        if self.state is not None:  # else the body is blank lines
            self._take(tokens, self.state)
        self.out.write(self.body[self.copied :])
        return self.out.getvalue()

    def unclosed_lines(self) -> tuple[int, ...]:
        """The line in the whole text of each unclosed ``<!--``, counted in one pass."""
        lines, line, position = [], self.skipped + 1, 0
        for offset in self.unclosed:
            line += self.body.count("\n", position, offset)
            position = offset
            lines.append(line)
        return tuple(lines)

    def _before_block(self, state: StateBlock, line: int, end: int, silent: bool) -> bool:
        """A block rule placed first, so called before every block is read, at every
        level: reads the comments of the top-level blocks read so far, and stops at a
        limit. Reads no block itself (False)."""
        self.state = state
        state.env.clear()  # link definitions, not needed: 5 MB of them took 200 MB
        if state.level == 0:
            self._take(state.tokens, state)
            state.tokens.clear()  # no rule looks back past a finished top-level block
            self.block_line = self.skipped + line + 1
            self.quote_ends.clear()
            return False
        if len(state.tokens) > MAX_TOKENS:
            raise MarkdownLimit(
                f"line {self.block_line}: a list or quote too long to read for HTML "
                f"comments (<!--): over {MAX_TOKENS:,} parser tokens, some "
                f"{MAX_TOKENS // 5:,} items (split it)"
            )
        # The first block of a quote's contents: its rule has just copied their lines'
        # positions (and each quote in it will again).
        if state.parentType == "blockquote" and self.quote_ends.get(state.level) != end:
            self.quote_ends[state.level] = end
            self.quoted += end - line
            if self.quoted > MAX_QUOTED:
                raise MarkdownLimit(
                    f"line {self.block_line}: over {MAX_QUOTED:,} lines in quotes, a line "
                    "counted once for each level: too many to read for HTML comments "
                    "(<!--) (split it)"
                )
        return False

    def _take(self, tokens: list[Token], state: StateBlock) -> None:
        """Reads the comments of finished blocks. At the top level, ``state`` has the
        file's line starts and ends (a quote or list changes them only while read)."""
        unread = self.md.options.maxNesting - 1  # containers whose contents are not read
        for token in tokens:
            if token.map is None or not (
                token.type in ("inline", "html_block")
                or (token.type in _CONTAINERS and token.level >= unread)
            ):
                continue
            start, end = state.bMarks[token.map[0]], state.eMarks[token.map[1] - 1]
            opening = self.body.find("<!--", start, end)
            if opening == -1:
                continue
            if token.type == "inline":
                self.leaf = start
                self.md.inline.tokenize(StateInline(self.body[start:end], self.md, {}, []))
            elif token.type == "html_block":
                self._html_block(opening, end)
            else:
                line = self.skipped + self.body.count("\n", 0, opening) + 1
                raise MarkdownLimit(
                    f"line {line}: an HTML comment (<!--) where quotes and lists are nested "
                    f"too deep to read ({unread + 1} levels: a quote is one, a list two)"
                )

    def _html_block(self, opening: int, end: int) -> None:
        while opening != -1:
            closing = self.body.find("-->", opening + 2, end)  # "<!-->" is whole
            if closing == -1:
                self.unclosed.append(opening)  # and a later "<!--" is not closed either
                return
            self._remove(opening, closing + 3)
            opening = self.body.find("<!--", closing + 3, end)

    def _html_inline(self, state: StateInline, silent: bool) -> bool:
        """markdown-it's raw HTML rule, but a comment runs from ``<!--`` to the first
        ``-->`` (``_html_block``), as CommonMark 0.31 and browsers read it: markdown-it's
        pattern refuses ``<!-- note --->``, and retries it at each later ``<!--``
        (quadratic). So a ``<!--`` without a ``-->`` after it in the paragraph is
        unclosed, and so is any later one there."""
        start = state.pos
        if not state.src.startswith("<!--", start):
            return html_inline(state, True)
        closing = state.src.find("-->", start + 2)  # "<!-->" is whole
        if closing == -1:
            self.unclosed.append(self.leaf + start)
            state.pos = state.posMax
        else:
            state.pos = closing + 3
            self._remove(self.leaf + start, self.leaf + state.pos)
        return True

    def _remove(self, start: int, end: int) -> None:
        """Leaves out ``body[start:end]`` but for its line breaks (comments are found
        in the order of the text)."""
        self.out.write(self.body[self.copied : start])
        self.out.write("\n" * self.body.count("\n", start, end))
        self.copied = end


def _plain(state: StateInline, silent: bool) -> bool:
    match = _PLAIN.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    state.pos = match.end()
    return True


def _any(state: StateInline, silent: bool) -> bool:
    state.pos += 1
    return True
