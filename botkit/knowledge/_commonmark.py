"""The one CommonMark parse (markdown-it-py) of a Markdown knowledge-base file: its
headings, its code blocks and its HTML comments.

Hand-written line readers get CommonMark wrong in many small ways (setext headings, a
fence that ends with its list item, ``#`` lines in HTML blocks...), and what the
rendered page shows is what customers see, so the knowledge base reads the blocks as a
CommonMark renderer does, once per file:

* headings at the top level of the file (ATX ``#`` and setext ``===``/``---``; not
  those in quotes or list items, which belong to them) open sections;
* code blocks (fenced and indented, at any level) keep their blank lines, so a passage
  is not cut inside one;
* comments are removed.

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
breaks, so passages keep their line numbers. Front matter (``front_matter``) is not
Markdown: it is not parsed (its ``key: value`` lines before a ``---`` would read as a
setext heading) and is left as it is.

Lines end at ``\\n`` and ``\\r`` only, as in CommonMark (``str.splitlines`` also breaks at
``\\u2028`` and others, which would shift every line number after one).

Cost: the parse is linear, but markdown-it-py is pure Python: measured on the 2-core
machine, 10 to 30 µs a block or line and about 350 bytes a block token; 5 MB of list
items parsed whole took 40 s and 2 GB. So runs of paragraphs and headings at the top
level are found by a regular expression and skipped (``_simple``: a file of them only
is not given to markdown-it's block rules at all), inline rules run only on the blocks
with a ``<!--``, the tokens of each top-level block are read and dropped as the parse goes,
and the parse stops (``MarkdownLimit``) past ``MAX_LINES`` lines, ``MAX_TOKENS``
tokens in one list or quote, or ``MAX_QUOTED`` lines in quotes (a quote copies its
lines' positions for each level). markdown-it stops reading quotes and lists nested 20
levels deep (a quote is one, a list two): nothing there is a top-level heading, but a
``<!--`` there stops the parse too, rather than showing what may be a note.
"""

from __future__ import annotations

import io
import re
import threading
from array import array

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline, backtick, escape, html_inline
from markdown_it.token import Token

from botkit.knowledge._markdown import Markdown, Uncommented, front_matter
from botkit.knowledge._simple import run_blocks_with, run_headings, simple_run

__all__ = [
    "MAX_LINES",
    "MAX_QUOTED",
    "MAX_TOKENS",
    "MarkdownLimit",
    "parse_markdown",
    "without_comments",
]

# Sizes measured on the 2-core machine. 500,000 lines: ~50 MB of markdown-it's line
# positions; at its slowest, 5 MB of fences or indented code (a "~~~~~~~~~~" or
# "    # code" line each, 454,000 lines) take about 2 s of CPU with the machine shared.
# Link definitions and headings on every line took 4 to 8 s before they were read as
# simple blocks (_simple): 0.4 and 1.1 s.
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
_CODE = frozenset({"fence", "code_block"})


class MarkdownLimit(Exception):
    """A Markdown file is too big or too deeply nested to parse, or the parser fails on
    it (the message says where and why)."""


def parse_markdown(text: str) -> Markdown:
    """Parses ``text`` once: its front matter, top-level headings, code blocks, and HTML
    comments outside code (module docstring), removed.

    An unclosed ``<!--`` and the text after it stay: dropping the rest of a page
    because of one stray marker would hide it without a word, so the caller reports
    the line instead.

    Raises:
        MarkdownLimit: over ``MAX_LINES`` lines, ``MAX_TOKENS`` in a list or quote,
            ``MAX_QUOTED`` lines in quotes, a ``<!--`` nested too deep to read, or the
            parser failed.
    """
    if "\r" in text:
        text = re.sub(r"\r\n?", "\n", text)
    start = body = 0
    meta: dict[str, str] = {}
    if text.lstrip(" \t").startswith("---"):  # as front_matter reads the first line
        # front_matter reads 200 lines at most: the rest stays one string.
        head = text.split("\n", 200)
        body, meta = front_matter(head)
        start = sum(map(len, head[:body])) + body  # and the line breaks
    lines = text.count("\n") + 1
    if lines > MAX_LINES:
        raise MarkdownLimit(
            f"{lines:,} lines, over the {MAX_LINES:,} a Markdown file may have to be read "
            "for its headings and HTML comments (<!--) (split it)"
        )
    reader = _Reader(text[start:], body)
    out = (text[:start] + reader.read()).split("\n")
    return Markdown(out, reader.unclosed_lines(), body, meta, reader.headings, reader.code)


def without_comments(text: str) -> Uncommented:
    """``text`` without HTML comments outside code (``parse_markdown``)."""
    markdown = parse_markdown(text)
    return Uncommented("\n".join(markdown.lines), markdown.unclosed)


class _Reader:
    """One Markdown text read by markdown-it: its top-level headings and code blocks
    found, and its comments removed, as the blocks are read."""

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
        self.commented = "<!--" in body  # else no block is searched for comments
        self.headings: array[int] = array("q")  # Markdown.heading_marks
        self.code: array[int] = array("q")  # Markdown.code_marks
        self.md = _PARSER.md
        self.state: StateBlock | None = None  # markdown-it's, once a block is read

    def read(self) -> str:
        """The body without its comments."""
        # markdown-it-py indexes past the end of a text whose last line is a quote's
        # ">" (IndexError on ">1. <!--\n>"; its issues #185, #204, #415): a line break
        # at the end gives it a character there, and changes nothing else.
        src = self.body + "\n"
        _PARSER.reader = self  # for the block rule, and the inline rules that _take runs
        try:
            if simple_run(src, 0, self.commented) == len(src):
                self._simple(src, 0, len(src), 0)  # no block needs markdown-it's rules
            else:
                self._parse(src)
        finally:
            _PARSER.reader = None
        self.out.write(self.body[self.copied :])
        return self.out.getvalue()

    def _parse(self, src: str) -> None:
        try:
            tokens = self.md.parse(src)
        except (IndexError, RuntimeError) as exc:  # another of its bugs: this file only
            raise MarkdownLimit(
                f"the Markdown parser (markdown-it-py) failed on it ({exc!r}), so its "
                "headings and HTML comments (<!--) cannot be told from text"
            ) from exc
        if self.state is not None:  # else the body is blank lines
            self._take(tokens, self.state)
            self.state = None  # its line positions: 50 MB for 500,000 lines

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
        level: reads the top-level blocks read so far, and stops at a limit. Reads no
        block itself (False)."""
        self.state = state
        state.env.clear()  # link definitions, not needed: 5 MB of them took 200 MB
        if state.level == 0:
            self._take(state.tokens, state)
            state.tokens.clear()  # no rule looks back past a finished top-level block
            self.block_line = self.skipped + line + 1
            self.quote_ends.clear()
            # Blocks start here whatever came before: markdown-it need not read a run
            # of simple ones (_simple).
            start = state.bMarks[line]
            end = simple_run(state.src, start, self.commented)
            if end == start:
                return False
            state.line = line + self._simple(state.src, start, end, line)
            return True
        if len(state.tokens) > MAX_TOKENS:
            raise MarkdownLimit(
                f"line {self.block_line}: a list or quote too long to read for headings "
                f"and HTML comments (<!--): over {MAX_TOKENS:,} parser tokens, some "
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
                    "counted once for each level: too many to read for headings and HTML "
                    "comments (<!--) (split it)"
                )
        return False

    def _simple(self, src: str, start: int, end: int, line: int) -> int:
        """Reads the headings and comments of a run of simple blocks, ``src[start:end]``
        from ``line`` on (``_simple``), and how many lines it has."""
        first = self.skipped + line
        for number, end_line, level in run_headings(src, start, end):
            self.headings.extend((first + number, first + end_line, level))
        if self.commented and src.find("<!--", start, end) != -1:
            for leaf, leaf_end, html in run_blocks_with(src, start, end, "<!--"):
                if html:
                    self._html_block(src.find("<!--", leaf, leaf_end), leaf_end)
                    continue
                self.leaf = leaf  # as _take reads a paragraph's or heading's text
                self.md.inline.tokenize(StateInline(src[leaf:leaf_end], self.md, {}, []))
        return src.count("\n", start, end)

    def _take(self, tokens: list[Token], state: StateBlock) -> None:
        """Reads the headings, code blocks and comments of finished blocks. At the top
        level, ``state`` has the file's line starts and ends (a quote or list changes
        them only while read); a token's lines are the file's at every level."""
        unread = self.md.options.maxNesting - 1  # containers whose contents are not read
        for token in tokens:
            if token.map is None:
                continue
            if token.type == "heading_open" and token.level == 0:
                first, end = token.map
                level = int(token.tag[1:])  # "h2"
                self.headings.extend((first + self.skipped, end + self.skipped, level))
            elif token.type in _CODE:
                self.code.extend((token.map[0] + self.skipped, token.map[1] + self.skipped))
            if not self.commented or not (
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


class _Parser(threading.local):
    """markdown-it set up for ``_Reader``, pointed at each file's reader in turn: built
    once per thread, as building it takes 0.2 ms, as long as parsing a 3 KB page."""

    def __init__(self) -> None:
        self.reader: _Reader | None = None  # the file being read
        md = MarkdownIt("commonmark")
        # The block rules only: inline rules run on the blocks with a "<!--" (_take).
        md.core.ruler.enableOnly(["normalize", "block"])
        md.block.ruler.before("table", "botkit_reader", self._before_block)
        # Only the inline rules that decide what a "<!--" is, and silent: no tokens (a
        # paragraph of 100,000 code spans would be 100,000 of them), only positions.
        md.inline.ruler.enableOnly(["text", "escape", "backticks", "html_inline"])
        md.inline.ruler.at("text", _plain)
        md.inline.ruler.at("escape", lambda state, _: escape(state, True))
        md.inline.ruler.at("backticks", lambda state, _: backtick(state, True))
        md.inline.ruler.at("html_inline", self._html_inline)
        md.inline.ruler.push("botkit_any", _any)  # else a pending character each
        self.md = md

    def _before_block(self, state: StateBlock, line: int, end: int, silent: bool) -> bool:
        return self.reader is not None and self.reader._before_block(state, line, end, silent)

    def _html_inline(self, state: StateInline, silent: bool) -> bool:
        return self.reader is not None and self.reader._html_inline(state, silent)


def _plain(state: StateInline, silent: bool) -> bool:
    match = _PLAIN.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    state.pos = match.end()
    return True


def _any(state: StateInline, silent: bool) -> bool:
    state.pos += 1
    return True


# One per thread: the knowledge base is read in worker threads.
_PARSER = _Parser()
