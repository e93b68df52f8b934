"""Cutting knowledge-base files into passages: headings, fences, sizes, bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from botkit.knowledge.documents import (
    DocumentError,
    read_document,
    split_markdown,
    split_text,
    without_comments,
)


def _md(text: str, chars: int = 800) -> list[tuple[str, str]]:
    return [(p.title, p.text) for p in split_markdown(text, source="f.md", title="f",
                                                       passage_chars=chars)]  # fmt: skip


def test_sections_carry_their_heading_path() -> None:
    text = "Intro.\n\n# Shipping\nWe ship.\n\n## Costs ##\nFree over 50.\n\n# Payment\nCards."
    assert _md(text) == [
        ("f", "Intro."),
        ("Shipping", "We ship."),
        ("Shipping > Costs", "Free over 50."),
        ("Payment", "Cards."),
    ]


def test_a_deeper_heading_after_a_skipped_level_and_an_empty_heading() -> None:
    text = "# A\n### C\none\n## B\ntwo\n##\nthree"
    assert _md(text) == [("A > C", "one"), ("A > B", "two"), ("A", "three")]


def test_hash_lines_in_code_fences_and_hashtags_are_not_headings() -> None:
    text = "# Setup\n```sh\n# install\n\npip install x\n```\n#hashtag stays text\n~~~\n# x\n~~~"
    [(title, body)] = _md(text)
    assert title == "Setup"
    assert "# install\n\npip install x" in body  # the blank line inside the fence stays
    assert "#hashtag stays text" in body and "# x" in body


def test_front_matter_is_left_out_and_unclosed_front_matter_is_text() -> None:
    assert _md("---\nowner: me\n---\n# T\nbody") == [("T", "body")]
    assert _md("---\nnot closed\n\nbody")[0][1].startswith("---")
    yaml = "---\n# edited by Ana\ntitle: A: B\nog:title: x\ntags:\n- a\n  - b\n\nurl:\n...\nbody"
    assert _md(yaml) == [("f", "body")]


def test_a_file_starting_with_a_horizontal_rule_keeps_its_text() -> None:
    text = "---\n\nOur phone number is 555-0100.\n\n---\n\n# Warranty\nTwo years."
    assert _md(text) == [
        ("f", "---\n\nOur phone number is 555-0100.\n\n---"),
        ("Warranty", "Two years."),
    ]
    for first in ("Call us: 555-0100", "  indented: x", "- item", "url:x"):
        assert _md(f"---\n{first}\n---\nbody")[0][1].startswith("---"), first


def test_passages_pack_paragraphs_and_cut_long_ones_at_sentences() -> None:
    sentence = "This is one sentence of the policy. "
    passages = _md("# Long\n" + sentence * 40, chars=200)
    assert len(passages) > 5
    for title, body in passages:
        assert title == "Long" and len(body) <= 200
        assert body.endswith(".")  # cut after a sentence, never inside one
    short = _md("# P\na\n\nb\n\nc", chars=200)
    assert short == [("P", "a\n\nb\n\nc")]


def test_unbroken_text_and_cjk_sentences_are_cut_within_the_limit() -> None:
    passages = _md("x" * 1000, chars=300)
    assert [len(b) for _, b in passages] == [300, 300, 300, 100]
    chinese = "我们在一个工作日内发货。" * 40  # no spaces between sentences
    cut = _md(chinese, chars=100)
    assert all(len(b) <= 100 and b.endswith("。") for _, b in cut)


def test_plain_text_is_titled_with_the_file_name() -> None:
    passages = list(split_text("One.\n\nTwo.", source="w.txt", title="warranty", passage_chars=100))
    assert [(p.title, p.text, p.line) for p in passages] == [("warranty", "One.\n\nTwo.", 1)]


def test_line_numbers_point_at_the_passage() -> None:
    passages = list(split_markdown("# A\n\nfirst\n\n# B\nsecond", source="f.md", title="f",
                                   passage_chars=100))  # fmt: skip
    assert [(p.title, p.line) for p in passages] == [("A", 3), ("B", 6)]


def test_a_hostile_heading_line_is_read_in_linear_time() -> None:
    # A backtracking heading pattern takes minutes on this; the suite's timeout guards.
    line = "#" + " " * 200_000 + "x" + " #" * 50_000
    passages = _md(line + "\nbody")
    assert passages[0][1] == "body"


def test_files_are_read_as_utf8_and_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes("\ufeff# Título\nbad\x00 text\x07 and \U0001f600".encode())
    [passage] = read_document(path, passage_chars=800, max_bytes=10_000).passages
    assert (passage.title, passage.text) == ("Título", "bad text and \U0001f600")


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("a.md", b"caf\xe9", "is not UTF-8: byte 0xE9 at byte offset 3 (counted from 0), line 1"),
        # With a byte-order mark: still counted from the file's first byte.
        (
            "b.md",
            b"\xef\xbb\xbf# T\nab\xff",
            "is not UTF-8: byte 0xFF at byte offset 9 (counted from 0), line 2",
        ),
        ("a.pdf", b"%PDF", "not a supported file"),
        ("big.md", b"x" * 101, "101 bytes, over max_file_bytes (100)"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(
    tmp_path: Path, name: str, content: bytes, error: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_document(path, passage_chars=800, max_bytes=100)


def test_a_missing_file_and_a_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot be read"):
        read_document(tmp_path / "gone.md", passage_chars=800, max_bytes=100)
    for name in ("dir.md", "kb2"):  # a folder, whatever its name, is named as one
        (tmp_path / name).mkdir()
        with pytest.raises(DocumentError) as error:
            read_document(tmp_path / name, passage_chars=800, max_bytes=100)
        assert str(error.value) == (
            "cannot be read: not a regular file but a folder (to use the files in it, "
            f"give a pattern such as {tmp_path / name}/**/*.md)"
        )


def test_special_files_are_refused_without_reading_them(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)  # reading it would block the loader forever
    with pytest.raises(DocumentError, match="not a regular file"):
        read_document(fifo, passage_chars=800, max_bytes=100)
    zero = tmp_path / "zero.md"
    zero.symlink_to("/dev/zero")  # stat says 0 bytes, reading never ends
    with pytest.raises(DocumentError, match="not a regular file"):
        read_document(zero, passage_chars=800, max_bytes=100)


def _uncommented(text: str) -> list[tuple[str, str, int]]:
    kept, _ = without_comments(text)
    passages = split_markdown(kept, source="f.md", title="f", passage_chars=800)
    return [(p.title, p.text, p.line) for p in passages]


def test_html_comments_never_reach_the_model() -> None:
    text = (
        "# Discounts\nNew customers get 10 % off with WELCOME10.\n<!-- internal: STAFF50\n"
        "gives 50 %; never tell customers -->\n\n# Empty\na<!---->b<!-->c<!--->d\n"
        "<!-- `code` in a comment is no code: --> shown"
    )
    assert _uncommented(text) == [
        ("Discounts", "New customers get 10 % off with WELCOME10.", 2),
        ("Empty", "abcd\n shown", 7),  # line numbers as in the file
    ]
    assert without_comments(text).unclosed == ()


def test_comment_markers_in_code_are_text() -> None:
    text = (
        "# Embedding\nThe line `<!-- botkit widget` marks where it starts; ``a `<!--` b``.\n"
        "```html\n<!-- botkit widget\n```\n\n~~~~\n<!--\n~~~\n~~~~\n"
        "# Refunds\nWithin 14 days.<!-- note -->\n\nAn unpaired ` backtick <!-- x -->.\n\n"
        "\\`<!-- escaped: no code span -->`"
    )
    assert without_comments(text).unclosed == ()
    assert _uncommented(text) == [
        ("Embedding", "The line `<!-- botkit widget` marks where it starts; ``a `<!--` b``.\n"
                      "```html\n<!-- botkit widget\n```\n\n~~~~\n<!--\n~~~\n~~~~", 2),
        ("Refunds", "Within 14 days.\n\nAn unpaired ` backtick .\n\n\\``", 12),
    ]  # fmt: skip
    # A code span ends with its paragraph: after a blank line a backtick opens nothing.
    assert without_comments("a `b\n\n<!-- c -->` d")[0] == "a `b\n\n` d"


def test_an_unclosed_comment_keeps_the_text_after_it_and_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "widget.md"
    path.write_text("# Widget\nPaste it <!-- where?\n\n# Refunds\nWithin 14 days.\n")
    document = read_document(path, passage_chars=800, max_bytes=10_000)
    assert [(p.title, p.text) for p in document.passages] == [
        ("Widget", "Paste it <!-- where?"),
        ("Refunds", "Within 14 days."),
    ]
    assert document.problems == (
        "line 2: an HTML comment (<!--) is never closed with -->; the text after it is "
        "used as written (close the comment, or put <!-- in `code`)",
    )


def test_hostile_backticks_are_read_in_linear_time() -> None:
    # Runs of every length without a partner: searched once each, this was quadratic.
    text = " ".join("`" * n for n in range(1, 1500)) + " <!-- x -->"
    assert without_comments(text)[0].endswith(" ")


def test_a_late_word_edge_is_preferred_to_an_early_sentence_end() -> None:
    text = "Rates are below. " + "Portugal and Italy standard parcel six fifty " * 10
    for _, body in _md(text, chars=250):
        assert len(body) <= 250
        assert not body.endswith(("p", "pa", "par", "parc", "parce")), body  # no cut words
    # An ideographic full stop right at the limit stays in its passage.
    cut = _md("一" * 99 + "。" + "二" * 50, chars=100)
    assert [len(b) for _, b in cut] == [100, 50]


def test_a_megabyte_paragraph_is_cut_in_linear_time() -> None:
    # Slicing off the rest at each piece made this quadratic (minutes); pytest's timeout
    # guards.
    block = "word " * 1_000_000
    passages = list(split_text(block, source="f.txt", title="f", passage_chars=100))
    assert len(passages) > 40_000 and all(len(p.text) <= 100 for p in passages)


def test_the_front_matter_url_goes_with_every_passage() -> None:
    text = "---\ntitle: Returns\nurl: 'https://help.example.com/returns'\n---\n# A\none\n# B\ntwo"
    passages = list(split_markdown(text, source="f.md", title="f", passage_chars=800))
    assert [p.url for p in passages] == ["https://help.example.com/returns"] * 2
    for bad in ("javascript:alert(1)", "https://", "https://x.com/a b", "ftp://x.com/f",
                "https://x.com/" + "a" * 300):  # fmt: skip
        text = f"---\nurl: {bad}\n---\n# A\none"
        [passage] = split_markdown(text, source="f.md", title="f", passage_chars=800)
        assert passage.url is None, bad
