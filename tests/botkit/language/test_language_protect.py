"""Protected spans survive translation; sentence segmentation is lossless and streams."""

from __future__ import annotations

import itertools
import random
import re
import time

import pytest

from botkit.language import Glossary, SentenceBuffer, protect, restore, split_sentences
from botkit.language.protect import find_spans

GLOSSARY = Glossary(["botkit", "botkit Pro", "C++", "Café Plus"])


def spans_of(text: str, glossary: Glossary | None = GLOSSARY) -> list[str]:
    return list(protect(text, glossary).spans)


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("Visit https://shop.example/a?b=1&c=2.", ["https://shop.example/a?b=1&c=2"]),
        ("(see https://en.wikipedia.org/wiki/Foo_(bar))", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("go to www.example.com, then", ["www.example.com"]),
        ("请访问https://x.cn/a。谢谢", ["https://x.cn/a"]),
        ("Mail help@shop.example.com.", ["help@shop.example.com"]),
        ("Order ORD-2024-0042 costs 12.50 EUR", ["ORD-2024-0042", "12.50"]),
        ("ticket #4521 at 10:30 on 2024-05-01", ["#4521", "10:30", "2024-05-01"]),
        ("SKU A12B and 1,000,000 items", ["A12B", "1,000,000"]),
        ("订单12345号", ["12345"]),
        ("run `pip install botkit` now", ["`pip install botkit`"]),
        ("```\nprint('hi. there')\n``` done", ["```\nprint('hi. there')\n```"]),
        ("I love botkit Pro and botkit!", ["botkit Pro", "botkit"]),
        ("BOTKIT pro is great", ["BOTKIT pro"]),
        ("botkits and mybotkit are not terms", []),
        ("we use C++ daily", ["C++"]),
        ("the Café Plus plan", ["Café Plus"]),
    ],
)  # fmt: skip
def test_spans(text: str, spans: list[str]) -> None:
    assert spans_of(text) == spans


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        # Everyday replies: the word after the number is text to translate.
        ("We have a 30-day return policy, 24-hour support and a 2-year warranty.",
         ["30", "24", "2"]),
        # Ids and units stay whole; an English ordinal is a word ("2.º piso").
        ("Order #4521-B, part A12-77 and SKU-9-XL ship in 3-5 days (5kg, 2x) to the 2nd floor",
         ["#4521-B", "A12-77", "SKU-9-XL", "3-5", "5kg", "2x"]),
        # Non-ASCII words: a span never stops inside one (composed or decomposed).
        ("Wir bieten eine 30-tägige Rückgabe und 2-jährige Garantie.", ["30", "2"]),
        ("Mi pedido de 3-días no llegó.", ["3"]),
        ("eine 30-ta\u0308gige Ru\u0308ckgabe, 4-a\u0308hnlich", ["30", "4"]),
        # ...nor starts inside one: letters written against the digits go with them.
        ("éclair5, Größe5 und 5दिन", ["éclair5", "Größe5", "5दिन"]),
        # Scripts without spaces have no word edges: the counter after a number is text.
        ("30-día 30일 반품, 30日間, 订单12345号, ๓๐วัน", ["30", "30", "30", "12345", "๓๐"]),
        # E-mail addresses at word edges, internationalized ones too.
        ("Écrivez à josé@münchen.de ou 请联系support@x.com谢谢",
         ["josé@münchen.de", "support@x.com"]),
    ],
)  # fmt: skip
def test_number_and_email_spans_start_and_end_at_word_edges(text: str, spans: list[str]) -> None:
    assert spans_of(text, None) == spans


def test_glossary_terms_match_at_word_edges_of_any_script() -> None:
    glossary = Glossary(["Bot", "微信", "भारत"])
    assert spans_of("Pulse el botón azul del Bot.", glossary) == ["Bot"]
    assert spans_of("Botones, Bots y robots; el Bot.", glossary) == ["Bot"]
    # Where words are not separated by spaces, a term is found inside the text.
    text = "用微信支付，Bot使用。Bot을 사용하세요"  # noqa: RUF001
    assert spans_of(text, glossary) == ["微信", "Bot", "Bot"]
    # A vowel sign (a combining mark, not \w) continues the word: "भारतीय" is no match.
    assert spans_of("भारतीय रेल और भारत", glossary) == ["भारत"]


def test_full_width_braces_and_spaces_are_read_as_placeholders() -> None:
    p = protect("Visit https://x.com/help for details.")
    expected = "请访问https://x.com/help了解详情。"
    assert restore("请访问｛0｝了解详情。", p) == expected  # noqa: RUF001
    assert restore("请访问｛ 0 ｝了解详情。", p) == expected  # noqa: RUF001
    assert restore("请访问{\u30000｝了解详情。", p) == expected  # noqa: RUF001
    # User text that looks like one is protected itself, so it comes back unchanged.
    text = "模板｛1｝和｛ 2 ｝保留"  # noqa: RUF001
    q = protect(text)
    assert q.spans == ("｛1｝", "｛ 2 ｝")  # noqa: RUF001
    assert restore(q.text, q) == text


def upper(text: str) -> str:
    """A 'translation' that changes every letter outside placeholders."""
    return re.sub(r"[^{}\d]+", lambda m: m.group().upper(), text)


@pytest.mark.parametrize(
    "text",
    [
        "Your order ORD-2024-0042 ships to help@shop.example on 2024-05-01: https://t.example/x",
        "Use `config.toml` and\n```toml\n[bot]\nname = 'x'\n```\nthen restart botkit Pro.",
        "Price: 1,299.00 EUR (incl. 19% VAT).",
    ],
)
def test_round_trip_keeps_spans_and_translates_the_rest(text: str) -> None:
    p = protect(text, GLOSSARY)
    assert p.needs_translation
    restored = restore(upper(p.text), p)
    for span in p.spans:
        assert span in restored
    assert restore(p.text, p) == text  # identity translation gives the text back


def test_placeholder_like_text_in_the_message_is_protected_itself() -> None:
    text = "Template {0} and { 1 } and {99} stay; {a} is text"
    p = protect(text)
    assert "{0}" in p.spans and "{ 1 }" in p.spans and "{99}" in p.spans
    # After protection the only placeholders are ours, numbered 0..n-1.
    found = sorted(int(m) for m in re.findall(r"\{\s*(\d+)\s*\}", p.text))
    assert found == list(range(len(p.spans)))
    assert restore(p.text, p) == text
    assert restore(upper(p.text), p).startswith("TEMPLATE {0} AND { 1 } AND {99}")


def test_huge_placeholder_numbers_never_reach_int_limits() -> None:
    text = "{" + "9" * 5000 + "} ok"
    p = protect(text)
    assert restore(p.text, p) == text
    assert restore("{" + "9" * 5000 + "}", p).count("9") >= 5000  # not ours: kept as text


def test_unbalanced_fence_runs_to_the_end() -> None:
    text = "Try this:\n```python\nprint('a. b. c')\nno closing fence. Really."
    p = protect(text)
    assert p.spans == ("```python\nprint('a. b. c')\nno closing fence. Really.",)
    assert restore(upper(p.text), p) == "TRY THIS:\n" + p.spans[0]
    # Segmentation keeps the open fence in one segment too.
    assert split_sentences(text)[-1].startswith("```python")


def test_mangled_placeholders_fall_back_to_appending_the_spans() -> None:
    p = protect("Order 12345 at https://x.example please.")
    assert p.text == "Order {0} at {1} please."
    assert restore("Pedido {0} por favor.", p) == "Pedido 12345 por favor. https://x.example"
    assert restore("Pedido por favor.\n", p) == "Pedido por favor. 12345 https://x.example\n"
    assert restore("Pedido { 1 } {0} {7}.", p) == "Pedido https://x.example 12345 ."
    assert restore("", p) == "12345 https://x.example"


def test_nothing_left_to_translate() -> None:
    for text in ["ORD-2024-0042", "https://x.example", "```\ncode\n```", "👍 12:30 !!", "{3}"]:
        assert not protect(text).needs_translation


HOSTILE = [
    "a" * 4000,
    "1" * 4000,
    "a-" * 2000,
    "a@" * 2000,
    ("x" * 3999) + "@",
    "`" * 4000,
    "```" * 1333,
    "{" * 4000,
    "{1}" * 1333,
    "http://" * 571,
    "." * 4000,
    ". " * 2000,
    "1." * 2000,
    "e.g. " * 800,
    "\n" * 4000,
    "ORD-" * 1000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:8]))
def test_hostile_4000_character_messages_are_fast_and_lossless(text: str) -> None:
    # CPU time of this thread, not the wall clock: other processes loading the machine
    # do not count, while a pattern that backtracks still burns its seconds here.
    start = time.thread_time()
    p = protect(text, GLOSSARY)
    assert restore(p.text, p) == text
    segments = split_sentences(text)
    assert "".join(segments) == text
    buffer = SentenceBuffer()
    streamed = [s for i in range(0, len(text), 7) for s in buffer.feed(text[i : i + 7])]
    assert "".join(streamed) + buffer.flush() == text
    assert time.thread_time() - start < 1.0  # linear patterns: milliseconds in practice


def test_random_text_round_trips() -> None:
    rng = random.Random(7)
    alphabet = "ab .,!?\n`{}@#-:/1239xyzé中。"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        p = protect(text, GLOSSARY)
        assert restore(p.text, p) == text
        spans = find_spans(text, GLOSSARY)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert "".join(split_sentences(text, max_chars=20)) == text


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("Hello there. How are you? Fine!", ["Hello there. ", "How are you? ", "Fine!"]),
        ('He said "Stop." Then left.', ['He said "Stop." ', "Then left."]),
        ("Dr. Smith met J. Doe, e.g. at 3.30 p.m. Today.",
         ["Dr. Smith met J. Doe, e.g. at 3.30 p.m. ", "Today."]),
        ("Visit example.com. Now.", ["Visit example.com. ", "Now."]),
        ("Line one\nLine two\n\nPara", ["Line one\n", "Line two\n\n", "Para"]),
        ("你好。我的订单呢？谢谢", ["你好。", "我的订单呢？", "谢谢"]),  # noqa: RUF001
        ("Run `a. b` then stop. Ok", ["Run `a. b` then stop. ", "Ok"]),
        ("```\na. b\n\nc. d\n```\nDone. Yes", ["```\na. b\n\nc. d\n```\n", "Done. ", "Yes"]),
    ],
)  # fmt: skip
def test_sentence_segments(text: str, segments: list[str]) -> None:
    assert split_sentences(text) == segments


def test_streaming_segments_match_whole_text_segments() -> None:
    text = "First one. Second one!\nThird: `x. y` and more. 你好。Last"
    for size in (1, 2, 3, 5, 11):
        buffer = SentenceBuffer()
        out = [s for i in range(0, len(text), size) for s in buffer.feed(text[i : i + size])]
        rest = buffer.flush()
        assert out + ([rest] if rest else []) == split_sentences(text)


def test_a_sentence_is_released_as_soon_as_it_is_complete() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("Hello there.") == []  # a closing quote might still follow
    assert buffer.feed(" How") == ["Hello there. "]
    assert buffer.feed(" are you?") == []
    assert buffer.flush() == "How are you?"


def test_long_text_without_boundaries_is_cut_at_a_space() -> None:
    text = ("word " * 200).strip()
    segments = split_sentences(text, max_chars=100)
    assert "".join(segments) == text
    assert all(len(s) <= 100 for s in segments)
