"""Which lines of a Markdown knowledge-base file are headings, as CommonMark reads them.

Each expectation is what markdown-it-py's CommonMark parse (and so GitHub's renderer)
makes of the text: only headings at the top level of the file open sections; a heading
in a quote or a list item, a ``#`` line in code or an HTML block, is text.
"""

from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from botkit.knowledge._commonmark import MAX_LINES, MAX_TOKENS
from botkit.knowledge.documents import Passage, read_document, split_markdown

FIVE_MB = 5_000_000


def _md(text: str) -> list[tuple[str, str]]:
    passages = split_markdown(text, source="f.md", title="f", passage_chars=800)
    return [(p.title, p.text) for p in passages]


def test_setext_headings_open_sections() -> None:
    text = "Shipping\n========\nWe ship.\n\nCosts\n-----\nFree over 50."
    assert _md(text) == [("Shipping", "We ship."), ("Shipping > Costs", "Free over 50.")]
    # Its lines are one title; a "---" after a blank line is a rule, not a heading.
    assert _md("Delivery and\n  returns\n===\nbody\n\n---\nmore") == [
        ("Delivery and returns", "body\n\n---\nmore")
    ]
    # Under an ATX heading, a setext "---" heading is a level 2 one.
    assert _md("# A\nB\n---\nc") == [("A > B", "c")]


def test_setext_heading_line_numbers_point_past_the_underline() -> None:
    passages = list(split_markdown("Intro.\n\nTitle\n=====\n\nbody", source="f.md", title="f",
                                   passage_chars=100))  # fmt: skip
    assert [(p.title, p.text, p.line) for p in passages] == [
        ("f", "Intro.", 1),
        ("Title", "body", 6),
    ]


def test_an_underline_after_a_lazy_quote_line_or_in_a_list_is_no_section() -> None:
    # The underline is a lazy continuation of the quote's paragraph: text.
    assert _md("> Quote\nlazy\n===\nbody") == [("f", "> Quote\nlazy\n===\nbody")]
    # A "---" after a quote is a rule (an underline cannot continue a quote).
    assert _md("> Quote\n---\nbody") == [("f", "> Quote\n---\nbody")]
    # Headings inside a list item or a quote are the item's or quote's text.
    assert _md("- Item\n  ---\n- # Listed\n> # Quoted\nbody") == [
        ("f", "- Item\n  ---\n- # Listed\n> # Quoted\nbody")
    ]


def test_hash_lines_in_indented_code_are_text() -> None:
    code = "    # not a heading\n\n    nor this\n\n\t# nor this"
    assert _md(f"# Setup\nRun:\n\n{code}\nend") == [("Setup", f"Run:\n\n{code}\nend")]


def test_a_fence_in_a_list_item_ends_with_the_item() -> None:
    text = "- Install:\n  ```sh\n  # as root\n\n  pip install x\n# Usage\nRun it."
    assert _md(text) == [
        ("f", "- Install:\n  ```sh\n  # as root\n\n  pip install x"),  # the blank line kept
        ("Usage", "Run it."),
    ]


def test_a_fence_in_a_quote_ends_with_the_quote() -> None:
    text = "> ```\n> # code\n>\n> more\n# Usage\nRun it."
    assert _md(text) == [("f", "> ```\n> # code\n>\n> more"), ("Usage", "Run it.")]


@pytest.mark.parametrize(
    "code",
    [
        "```\nline one\n\nline two\n```",
        "    line one\n\n    line two",
        "  ~~~\n  one\n\n  two\n  ~~~",
    ],
    ids=["fenced", "indented", "in-a-list-item"],
)
def test_a_passage_is_not_cut_at_a_blank_line_in_code(code: str) -> None:
    text = "Intro.\n\n" + ("- Step:\n\n" if code.startswith("  ~") else "") + code
    passages = [p.text for p in split_markdown(text, source="f.md", title="f", passage_chars=30)]
    assert passages[-1] == code  # else "Intro.\n\n```\nline one", then "line two\n```"


def test_fences_close_with_their_own_character_at_least_as_long() -> None:
    text = "```\n# a\n~~~\n# b\n``\n# c\n``` not a close\n# d\n`````\n# Real\nbody"
    assert _md(text) == [("f", text.split("\n# Real")[0]), ("Real", "body")]
    # Backticks in a backtick fence's info string make it no fence at all (a paragraph);
    # a tilde fence may have them.
    assert _md("``` a`b\n# Real\nbody") == [("f", "``` a`b"), ("Real", "body")]
    assert _md("~~~ a`b\n# x\n~~~\n# Real\nbody") == [("f", "~~~ a`b\n# x\n~~~"), ("Real", "body")]
    # A fence never closed runs to the end of the file.
    assert _md("# A\n```\n# x\n\ny") == [("A", "```\n# x\n\ny")]


def test_hashes_without_a_space_and_closing_sequences() -> None:
    assert _md("#hashtag\n#5 on the list\n\\# escaped\n####### seven") == [
        ("f", "#hashtag\n#5 on the list\n\\# escaped\n####### seven")
    ]
    text = "# A ###   \nb\n## B #not closing\nc\n## C \\##\nd\n   ### D\t#\ne\n## #\nf"
    assert _md(text) == [
        ("A", "b"),
        ("A > B #not closing", "c"),
        ("A > C \\##", "d"),
        ("A > C \\## > D", "e"),
        ("A", "f"),  # an empty heading closes the sections below its level
    ]


def test_hash_lines_in_an_html_block_are_text() -> None:
    text = "<div>\n# Not a heading\n</div>\n\n# Real\nbody"
    assert _md(text) == [("f", "<div>\n# Not a heading\n</div>"), ("Real", "body")]
    # A blank line ends this kind of HTML block: the heading after it is one.
    details = "<details>\n<summary>More</summary>\n\n# Inside\ntext\n</details>"
    assert _md(details) == [("f", "<details>\n<summary>More</summary>"),
                            ("Inside", "text\n</details>")]  # fmt: skip


def test_front_matter_is_no_setext_heading_but_a_rule_and_text_may_be() -> None:
    assert _md("---\ntitle: A\n---\nbody") == [("f", "body")]
    # Not front matter: a rule, then "Call us" underlined by "---", a heading.
    assert _md("---\nCall us\n---\nbody") == [("f", "---"), ("Call us", "body")]


def test_comments_in_headings_are_left_out_of_their_titles() -> None:
    text = (
        "Title <!-- draft -->\n===\na\n\n## Costs <!-- check --> ##\nb\n\nC <!-- x\ny -->\n---\nc"
    )
    assert _md(text) == [("Title", "a"), ("Title > Costs", "b"), ("Title > C", "c")]


def test_unicode_line_separators_are_no_line_breaks() -> None:
    # CommonMark breaks lines at \n and \r only: "# B" here is inside a line.
    assert _md("# A\nx\u2028# B\ny\u2029z") == [("A", "x\u2028# B\ny\u2029z")]


# Hostile files, 5 MB (max_file_bytes), none with "<!--": read in linear time, or, past
# a limit of the parser, read as plain text (the file's name as the title) with a
# problem. Times on the 2-core machine are in docs/knowledge.md (about 2 s at most, 5 MB
# of fences or indented code); none is asserted here, pytest's timeout guards.


def _read(tmp_path: Path, text: str) -> tuple[list[Passage], tuple[str, ...]]:
    path = tmp_path / "hostile.md"
    path.write_text(text, encoding="utf-8")
    document = read_document(path, passage_chars=800, max_bytes=FIVE_MB)
    return document.passages, document.problems


# Every line at least 11 bytes: 5 MB stays under MAX_LINES.
@pytest.mark.slow
@pytest.mark.parametrize(
    "unit",
    ["## Title x\n", "#         \n", "Title abcd\n==========\n", "````` info\n# code xyz\n",
     "~~~~~~~~~~\n", "    # code\n", "<div> abcd\n", "[a]: /url12\n", "> ```` abc\n",
     "x\u2028# yyyyyy\n", "a" * 5000 + "\n", ">" * FIVE_MB],
    ids=["atx", "empty-atx", "setext", "fences", "tildes", "indented", "html", "references",
         "quoted-fences", "separators", "long-lines", "quotes"],
)  # fmt: skip
def test_five_megabytes_of_structure_are_read_in_linear_time(tmp_path: Path, unit: str) -> None:
    text = unit * (FIVE_MB // len(unit.encode()))
    passages, problems = _read(tmp_path, text)
    assert problems == ()
    assert all(0 < len(p.text) <= 800 for p in passages)


def test_headings_are_kept_in_little_memory() -> None:
    # 45,000 headings: as objects with their titles they took 30 bytes of memory per
    # byte of text; kept as numbers, 13.
    text = "## Title x\n" * 45_000
    tracemalloc.start()  # slows the parse down eightfold: a small file
    try:
        passages = list(split_markdown(text, source="f.md", title="f", passage_chars=800))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert passages == [] and peak < 20 * len(text), peak


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("Text\n" + "\n" * MAX_LINES + "# Heading\nbody", "lines, over the"),
        ("Text\n\n" + "- a\n" * (MAX_TOKENS // 4) + "# Heading\nbody", "list or quote"),
    ],
    ids=["lines", "list"],
)
def test_a_file_past_a_parser_limit_is_read_as_plain_text(
    tmp_path: Path, text: str, limit: str
) -> None:
    front = "---\nurl: https://x.com/a\n---\n"
    passages, problems = _read(tmp_path, front + text)
    [problem] = problems
    assert limit in problem and problem.endswith("; it is read as plain text, without its headings")
    assert {p.title for p in passages} == {"hostile"}  # its text is used, without headings
    assert passages[0].text.startswith("Text") and passages[0].line == 4  # no front matter
    assert passages[-1].text.endswith("# Heading\nbody")
    assert {p.url for p in passages} == {"https://x.com/a"}


def test_files_are_parsed_in_threads_at_once() -> None:
    # The parser is built once per thread (it takes as long as parsing a small page):
    # shared between threads, one file's headings would land in another's.
    texts = [f"# File {n}\n" + "".join(f"## S{n}.{i}\nText {i}.\n\n" for i in range(4000))
             for n in range(4)]  # fmt: skip
    expected = [_md(text) for text in texts]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(_md, texts)) == expected
