"""The bits of Markdown syntax the knowledge base reads: code fences, and HTML comments
outside code.

``<!--`` opens a comment only where Markdown would read it as HTML: not inside an inline
code span (`` `<!-- botkit widget -->` `` in a page about embedding the widget) nor a
fenced code block, where it is text shown to the reader. Inside a comment, nothing is
code: the first ``-->`` closes it. As in CommonMark, code spans and comments are read
left to right, whichever starts first wins, and a backtick run without a closing run of
the same length in its paragraph is plain text. Indented code blocks are not told apart
from indented paragraphs (that needs list structure): a ``<!--`` there opens a comment.

Every step is linear in the text (a 5 MB file of backticks included).
"""

from __future__ import annotations

import bisect
import re

__all__ = ["fence_after", "without_comments"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# What matters in prose: a comment's opening, a backtick run, a backslash escape (so
# "\`" opens no code span and "\<!--" no comment), a line's end.
_TOKEN = re.compile(r"<!--|`+|\\[^\n]|\n")
_BACKTICKS = re.compile(r"`+")
# A code span never runs past its paragraph: it ends at a blank line.
_BLANK_LINE = re.compile(r"\n[ \t]*(?:\n|$)")


def fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence after ``line`` (its marker), given the one before it."""
    match = _FENCE.match(line)
    if match is None:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker
    # A fence closes with the same character, at least as long, and nothing after it.
    if marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip()[len(marker) :]:
        return None
    return fence


class _Runs:
    """Where the backtick runs of one paragraph are, by length, found in one pass: a
    paragraph of runs without partners is then not searched again for each of them."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.end = end
        self.starts: dict[int, list[int]] = {}
        for match in _BACKTICKS.finditer(text, start, end):
            self.starts.setdefault(len(match.group()), []).append(match.start())

    def closing(self, length: int, after: int) -> int | None:
        """The end of the first run of exactly ``length`` backticks at or after
        ``after``, or None."""
        starts = self.starts.get(length, [])
        found = bisect.bisect_left(starts, after)
        return starts[found] + length if found < len(starts) else None


def without_comments(text: str) -> tuple[str, int | None]:
    """``text`` without HTML comments (``<!-- ... -->``: editors' notes the rendered page
    does not show, which must not reach the model), and the line (1-based) of a ``<!--``
    that is never closed, or None.

    Comments in code are text (see the module docstring). An unclosed ``<!--`` and
    everything after it stay: dropping the rest of a file because of one stray marker
    hides pages without a word, so the caller reports the line instead. Each comment's
    line breaks stay, so passages keep their line numbers.
    """
    comments: list[tuple[int, int]] = []
    unclosed: int | None = None
    runs: _Runs | None = None
    fence: str | None = None
    position, size = 0, len(text)
    while position < size and unclosed is None:
        # At the start of a line: fenced code is skipped whole, line by line.
        end = text.find("\n", position)
        end = size if end == -1 else end
        was_open, fence = fence, fence_after(text[position:end], fence)
        if was_open or fence:
            position = end + 1
            continue
        while (token := _TOKEN.search(text, position)) is not None:
            position = token.end()
            found = token.group()
            if found == "\n":
                break
            if found == "<!--":
                # "<!-->" and "<!--->" are whole (empty) comments, as in CommonMark.
                closing = text.find("-->", token.start() + 2)
                if closing == -1:
                    unclosed = text.count("\n", 0, token.start()) + 1
                    break
                position = closing + 3
                comments.append((token.start(), position))
            elif found[0] == "`":
                if runs is None or runs.end < position:
                    blank = _BLANK_LINE.search(text, position)
                    runs = _Runs(text, position, size if blank is None else blank.start())
                closing_end = runs.closing(len(found), position)
                if closing_end is not None:
                    position = closing_end  # the span is code: nothing in it counts
        else:
            position = size
    parts: list[str] = []
    position = 0
    for start, stop in comments:
        parts += [text[position:start], "\n" * text.count("\n", start, stop)]
        position = stop
    parts.append(text[position:])
    return "".join(parts), unclosed
