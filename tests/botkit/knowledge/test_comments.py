"""HTML comments in Markdown knowledge-base files: where CommonMark reads ``<!--`` as a
comment (removed, line breaks kept), as text (code), or as never closed (reported)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from botkit.knowledge._commonmark import MAX_LINES, MAX_QUOTED, MAX_TOKENS, MarkdownLimit
from botkit.knowledge.documents import (
    DocumentError,
    read_document,
    split_markdown,
    without_comments,
)

FIVE_MB = 5_000_000


def _passages(text: str) -> list[tuple[str, str, int]]:
    kept, unclosed = without_comments(text)
    assert unclosed == ()
    passages = split_markdown(kept, source="f.md", title="f", passage_chars=800)
    return [(p.title, p.text, p.line) for p in passages]


def test_comment_markers_in_indented_code_are_text() -> None:
    text = (
        "# Embedding\nPaste this:\n\n    <!-- botkit widget -->\n    <script src=w.js>"
        "</script>\n\nThe old one:\n\n    <!-- botkit widget, old\n\nThen save. <!-- ask Ana -->\n"
    )
    assert without_comments(text) == (text.replace("<!-- ask Ana -->", ""), ())
    # In a list item the code starts four spaces after the item's text...
    item = "- Step one:\n\n      <!-- code in a list item -->\n\n  <!-- a note -->\n"
    assert without_comments(item).text == item.replace("<!-- a note -->", "")
    # ... and four spaces in a paragraph's next line are no code at all.
    assert without_comments("- Step one\n    <!-- a note -->\n").text == "- Step one\n    \n"


def test_comments_in_list_items_are_removed() -> None:
    text = (
        "# Returns\n- Within 14 days <!-- check with legal -->\n"
        "- Refunds in 5 days <!-- finance says\n  maybe 7 -->, to the card.\n"
        "  1. Nested <!-- n --> item\n"
    )
    assert _passages(text) == [
        ("Returns", "- Within 14 days\n- Refunds in 5 days\n, to the card.\n  1. Nested  item", 2)
    ]


def test_comments_in_quotes_are_removed() -> None:
    text = (
        "> Our promise: <!-- draft -->\n> delivery in 2 days <!-- spanning\n> two lines -->.\n"
        ">\n> <!-- a block of its own -->\n> Signed, the team\n>> `<!-- code -->` stays\n"
    )
    assert without_comments(text) == (
        "> Our promise: \n> delivery in 2 days \n.\n>\n> \n> Signed, the team\n"
        ">> `<!-- code -->` stays\n",
        (),
    )


def test_an_html_block_comment_spanning_lines_keeps_the_line_numbers() -> None:
    text = (
        "# Shipping\n<!--\nTODO: Canada rates\n\nfrom the carrier\n-->\nWe ship in 2 days.\n\n"
        "# Returns\n<div>\n<!-- a --> shown <!-- b\nc -->\n</div>\n\n14 days."
    )
    assert _passages(text) == [
        ("Shipping", "We ship in 2 days.", 7),
        ("Returns", "<div>\n shown\n\n</div>\n\n14 days.", 10),
    ]


def test_an_inline_comment_mid_paragraph() -> None:
    text = "Delivery <!-- check --> takes\n2 days <!-- and\nthis --> to Canada.\n\nNext."
    assert _passages(text) == [("f", "Delivery  takes\n2 days\n to Canada.\n\nNext.", 1)]


def test_escaped_and_code_span_markers_are_text() -> None:
    text = "Type \\<!-- x --> or `<!-- y -->` or ``a ` <!-- z --> b``; <!-- gone -->done."
    assert without_comments(text) == (text.replace("<!-- gone -->", ""), ())
    # A "<!--" in a tag's attribute is no comment either.
    tag = '<a title="<!--">x</a> and <!-- gone -->'
    assert without_comments(tag).text == '<a title="<!--">x</a> and '


def test_each_unclosed_comment_is_reported_and_later_ones_still_removed() -> None:
    text = (
        "Intro <!-- note\n\nmore --> text <!-- kept? no: closed -->\n\n"
        "# Heading <!-- open\n\n<div>\n<!-- never\n</div>\n\n<!-- to the end\nLast."
    )
    kept, unclosed = without_comments(text)
    # A comment closes in its paragraph or HTML block, or not at all: CommonMark
    # shows "<!-- note" and "more -->" as text.
    assert kept == text.replace("<!-- kept? no: closed -->", "")
    assert unclosed == (1, 5, 8, 11)


def test_many_unclosed_comments_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("".join(f"Paragraph {n} <!-- open\n\n" for n in range(8)))
    problems = read_document(path, passage_chars=800, max_bytes=10_000).problems
    assert len(problems) == 6
    assert problems[4].startswith("line 9: an HTML comment (<!--) is never closed")
    assert problems[5] == "3 more HTML comments (<!--) are never closed, from line 11"


def test_front_matter_is_not_read_for_comments(tmp_path: Path) -> None:
    path = tmp_path / "widget.md"
    path.write_text(
        "---\ntitle: Widget <!-- draft\nurl: https://help.example.com/w\n---\n"
        "# Widget\nPaste it. <!-- where? -->\n"
    )
    document = read_document(path, passage_chars=800, max_bytes=10_000)
    assert document.problems == ()
    [passage] = document.passages
    assert (passage.text, passage.line, passage.url) == (
        "Paste it.",
        6,
        "https://help.example.com/w",
    )


def test_crlf_line_ends_are_read() -> None:
    assert without_comments("a\r\nb <!-- c\r\nd --> e\r") == ("a\nb \n e\n", ())


def test_a_comment_ends_at_the_first_closing_marker() -> None:
    # As in CommonMark 0.31 and browsers; markdown-it-py's own pattern refuses these.
    assert without_comments("a <!-- note ---> b <!--x--y---> c").text == "a  b  c"


def test_a_quote_ending_the_file_after_an_html_block() -> None:
    # markdown-it-py 4.3 raises IndexError on this as it is (a final ">" line).
    assert without_comments(">1. <!--\n>") == (">1. <!--\n>", (1,))
    assert without_comments("> - <!-- x -->\n>") == ("> - \n>", ())


def test_a_parser_failure_refuses_the_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise IndexError("string index out of range")

    path = tmp_path / "a.md"
    path.write_text("- Text <!-- x -->\n")  # a list: parsed by markdown-it (see _simple)
    monkeypatch.setattr(MarkdownIt, "parse", fail)  # as its bugs do (see above)
    with pytest.raises(DocumentError, match=r"^the Markdown parser \(markdown-it-py\) failed"):
        read_document(path, passage_chars=800, max_bytes=1000)
    # No "<!--": nothing to hide, read as plain text.
    path.write_text("# Title\n- Text\n")
    document = read_document(path, passage_chars=800, max_bytes=1000)
    assert [(p.title, p.text) for p in document.passages] == [("a", "# Title\n- Text")]
    assert document.problems[0].startswith("the Markdown parser (markdown-it-py) failed")


# Hostile files, each 5 MB (max_file_bytes): read in linear time, or refused at a
# limit. Times on the 2-core machine are in docs/knowledge.md; none is asserted here,
# pytest's timeout guards.


def test_five_megabytes_of_comment_openers() -> None:
    block = "<!--" * (FIVE_MB // 4)  # one HTML block, never closed
    assert without_comments(block) == (block, (1,))
    paragraph = "x " + block  # one paragraph
    assert without_comments(paragraph) == (paragraph, (1,))
    closed = "a<!---->" * (FIVE_MB // 8)
    assert without_comments(closed) == ("a" * (FIVE_MB // 8), ())
    # One comment to the end: markdown-it-py's pattern retries it at each "<!--".
    dashes = "x " + "<!--a-" * (FIVE_MB // 6) + "-->"
    assert without_comments(dashes) == ("x ", ())


@pytest.mark.parametrize("character", ["[", "![", "*", "_", "`", "\\", "<", "<a "])
def test_five_megabytes_of_one_markup_character(character: str) -> None:
    text = "x " + character * (FIVE_MB // len(character)) + " x <!-- note -->"
    assert without_comments(text) == (text.removesuffix("<!-- note -->"), ())


def test_five_megabytes_of_nested_quotes_and_lists() -> None:
    quotes = ">" * FIVE_MB + " <!-- too deep to read -->"
    with pytest.raises(MarkdownLimit, match=r"^line 1: .* nested too deep to read \(20 levels"):
        without_comments(quotes)
    lists = "".join("  " * depth + "- item\n" for depth in range(25))
    deep = (lists * (FIVE_MB // len(lists)))[:FIVE_MB]
    assert without_comments("<!-- shallow -->\n" + deep).text == "\n" + deep
    # A list is two levels (the list, its item): the 10th list's items are not read,
    # nor anything after them in the lists around them.
    nested = "".join("  " * depth + "- item\n" for depth in range(11))
    with pytest.raises(MarkdownLimit, match=r"^line 12: .* nested too deep"):
        without_comments(nested + "  " * 8 + "- <!-- after the 10th list -->\n")
    ninth = "\n" + "  " * 8 + "- item"  # the 9th list's item: read
    shallow = nested.replace(ninth, ninth + " <!-- note -->")
    assert without_comments(shallow).text == nested.replace(ninth, ninth + " ")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "Text" + "\n" * MAX_LINES + "<!-- x -->",
            f"{MAX_LINES + 1:,} lines, over the {MAX_LINES:,}",
        ),
        ("- a\n" * (MAX_TOKENS // 4) + "<!-- x -->", "line 1: a list or quote too long to read"),
        ("> " * 10 + "a\n" * (MAX_QUOTED // 10 + 1) + "<!-- x -->", "line 1: over 1,000,000"),
    ],
    ids=["lines", "list", "quotes"],
)
def test_a_file_too_big_to_read_for_comments_is_refused(
    tmp_path: Path, text: str, error: str
) -> None:
    with pytest.raises(MarkdownLimit, match=error):
        without_comments(text)
    path = tmp_path / "big.md"
    path.write_text(text)
    with pytest.raises(DocumentError, match=error):
        read_document(path, passage_chars=800, max_bytes=FIVE_MB)
    # The same text without a comment has nothing to hide: read as plain text.
    path.write_text(text.replace("<!-- x -->", ""))
    document = read_document(path, passage_chars=800, max_bytes=FIVE_MB)
    assert document.passages and re.match(error, document.problems[0])
