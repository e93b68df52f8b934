"""Runs of simple blocks (paragraphs and ATX headings) that the knowledge base reads
without markdown-it's block rules (``_simple``): the headings, code blocks and comments
found must be those of a whole markdown-it parse, whatever the lines around them."""

from __future__ import annotations

import random

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from botkit.knowledge._commonmark import parse_markdown
from botkit.knowledge._simple import run_blocks_with, run_headings, simple_run

# Lines that are simple, lines that look like them but start a block (or end one) at
# some places, and lines around them: every boundary of the simple runs. Comments are
# whole (what an unclosed one does is in test_comments).
LINES = [
    "", "  ", "\t", "text", "  text", "   text", "    code", "\tcode", "  \tcode",
    "# h", "#h", "####### h", "   ## h", "#", "###   ", "    # h", "\u00a0# h", "#\u00a0h",
    "===", "= x", "==x", "== =", "=\t", "   ---", "    ===", "---", "-- x", "-- -", "- - -",
    "- item", "-", "-5 deg", " - x",
    "* item", "*", "*em*", "***", "**bold**", "* * *", "*-*", "+ x", "+", "+x",
    "_x_", "___", "_ _ _", "1. one", "1) one", "1.", "2024 was", "1234567890. x",
    "123456789) ```", "\u0663. x", "```", "``` js", "> ```", "- ```", ">     code",
    "``x``", "~~~", "~x", "> quote", ">", "<div>", "</div>",
    "<!-- c -->", "text <!-- c --> more", "# h <!-- c -->", "`<!-- c -->`", "<!-->",
    "   <!-- c --> x", "<!-- c -->-->", "<!-- c --> <!-- c -->",
    "[a]: /url", "[a]:", "/url", "'title'", "[foo", "bar]: /u", "[link](x) text",
    "a\u00a0", "\x0c", "| a | b |", "\\# x",
]  # fmt: skip


def _oracle(text: str) -> tuple[list[int], list[int], set[int] | None]:
    """Top-level heading marks, code marks and the lines with a comment (None where a
    code span may span lines, hiding which), from a whole markdown-it parse (inline
    rules included)."""
    headings: list[int] = []
    code: list[int] = []
    comments: set[int] | None = set()
    # With a line break at the end, as _commonmark parses (else a last line of spaces
    # is no line to markdown-it-py, and an unclosed fence ends a line earlier).
    for token in MarkdownIt("commonmark").parse(text + "\n"):
        assert token.map is not None or token.type.endswith("_close"), token
        if token.type == "heading_open" and token.level == 0:
            headings += [*token.map, int(token.tag[1:])]  # type: ignore[misc]
        elif token.type in ("fence", "code_block"):
            code += token.map  # type: ignore[arg-type]
        elif comments is None:
            continue
        elif token.type == "html_block":
            first = token.map[0]  # type: ignore[index]
            lines = token.content.split("\n")
            comments |= {first + n for n, line in enumerate(lines) if "<!-- c -->" in line}
        elif token.type == "inline":
            found = _inline_comments(token, text.split("\n"))
            comments = None if found is None else comments | found
    return headings, code, comments


def _inline_comments(token: Token, lines: list[str]) -> set[int] | None:
    line = token.map[0]  # type: ignore[index]
    while line < len(lines) - 1 and not lines[line].strip():  # "\x0c": stripped off
        line += 1
    found = set()
    for child in token.children or ():
        if child.type == "softbreak":
            line += 1
        elif child.type == "code_inline":
            return None  # its line breaks are no softbreaks
        elif child.type == "html_inline" and child.content.startswith("<!--"):
            found.add(line)
    return found


def _check(text: str) -> None:
    headings, code, comments = _oracle(text)
    markdown = parse_markdown(text)
    assert (list(markdown.heading_marks), list(markdown.code_marks)) == (headings, code), text
    removed = {
        number
        for number, line in enumerate(text.split("\n"))
        if "<!-- c -->" in line and "<!-- c -->" not in markdown.lines[number]
    }
    assert comments is None or removed == comments, text


@pytest.mark.parametrize("seed", range(8))
def test_random_documents_read_as_markdown_it_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        lines = rng.choices(LINES, k=rng.randint(1, 12))
        # A first blank line: a document starting "---" is not read for front matter.
        _check("\n" + "\n".join(lines))


def test_simple_runs_end_where_blocks_may_start() -> None:
    src = "# A\ntext\nmore\n\n## B\npara\n===\n-5 deg\n- - -\n"
    end = simple_run(src, 0, False)
    assert src[:end] == "# A\ntext\nmore\n\n## B\npara\n===\n"  # "-5 deg" is a paragraph's
    assert list(run_headings(src, 0, end)) == [(0, 1, 1), (4, 5, 2), (5, 7, 1)]
    assert simple_run(src, end, False) == end
    assert simple_run("[a]: /u\n---\n", 0, False) == 0  # a link definition, a rule
    assert simple_run("text\n[a]: /u\n---\n", 0, False) == len("text\n[a]: /u\n---\n")
    commented = "# A <!-- c -->\n\ntext\nx <!-- c -->\n===\n# B\nx <!--\n"
    assert simple_run(commented, 0, True) == len(commented)
    definition = "text\n\n[a <!-- no comment -->]: /u\n"  # markdown-it's to read
    assert simple_run(definition, 0, True) == len("text\n\n")
    assert simple_run(definition, 0, False) == len(definition)
    blocks = [commented[a:b] for a, b, _ in run_blocks_with(commented, 0, len(commented), "<!--")]
    assert blocks == ["# A <!-- c -->", "text\nx <!-- c -->\n===", "x <!--"]
    lines = "text\n<!-- c --> x\nmore\n  <!-->\n"  # HTML blocks of one line
    assert simple_run(lines, 0, True) == len(lines)
    blocks = [lines[a:b] for a, b, html in run_blocks_with(lines, 0, len(lines), "<!--") if html]
    assert blocks == ["<!-- c --> x", "  <!-->"]
    assert simple_run("text\n<!-- c\n-->\n", 0, True) == len("text\n")


def test_a_page_of_headings_and_prose_with_lists_between() -> None:
    # The long simple runs of a help page around a list and a fence, read by markdown-it.
    page = "\n".join([
        "# Returns", "You can return any item.", "Within 30 days.", "",
        "## How", "- Pack it", "- Print the label", "", "Then drop it off.",
        "Setext", "------", "```", "# not a heading", "```", "", "## Refunds", "Paid",
        "   in 5 days.", "    more", "", "    code", "# Last",
    ])  # fmt: skip
    _check(page)
    assert list(parse_markdown(page).heading_marks) == [
        0, 1, 1, 4, 5, 2, 8, 11, 2, 15, 16, 2, 21, 22, 1
    ]  # fmt: skip
