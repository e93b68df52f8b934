"""Sentence segmentation: bounded segments for any script, times, and streaming that
gives the same segments as whole-text splitting."""

from __future__ import annotations

import itertools
import random
import unicodedata

import pytest

from botkit.language import Glossary, SentenceBuffer, protect, split_sentences
from botkit.language.protect import find_spans


def streamed(
    text: str,
    max_chars: int = 400,
    sizes: list[int] | None = None,
    glossary: Glossary | None = None,
) -> list[str]:
    """Segments of ``text`` fed in pieces of ``sizes`` (cycled; one character each if None)."""
    buffer = SentenceBuffer(max_chars, glossary=glossary)
    out: list[str] = []
    pos = 0
    for size in itertools.cycle(sizes or [1]):
        if pos >= len(text):
            break
        out += buffer.feed(text[pos : pos + size])
        pos += size
    rest = buffer.flush()
    return out + ([rest] if rest else [])


def cut_positions(segments: list[str]) -> list[int]:
    return list(itertools.accumulate(len(s) for s in segments))[:-1]


def splits_a_character(text: str, pos: int) -> bool:
    """Whether ``pos`` separates a combining mark, a ZWJ sequence, a surrogate pair or a
    virama conjunct (checked independently of the splitter's own rule)."""
    before, after = text[pos - 1], text[pos]
    return (
        unicodedata.category(after).startswith("M")
        or "\u200d" in (before, after)
        or ("\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff")
        or unicodedata.combining(before) == 9
    )


def test_a_long_text_without_sentence_ends_is_cut_at_clause_marks() -> None:
    # A Chinese message written with commas only (common in chat): no "。", no space.
    # One ~850-character segment would reach a model with a 512-token source limit
    # (OPUS-MT), which translates only its prefix.
    text = "我上周在你们网站买了一台洗衣机，订单号是ORD-2024-0042，" * 25  # noqa: RUF001
    segments = split_sentences(text, max_chars=400)
    assert "".join(segments) == text
    assert len(segments) > 2 and all(len(s) <= 400 for s in segments)
    assert all(s.endswith("，") for s in segments)  # noqa: RUF001
    assert sum(protect(s).spans.count("ORD-2024-0042") for s in segments) == 25
    assert streamed(text, 400, [7]) == segments


THAI = "สวัสดีครับผมต้องการสอบถามเกี่ยวกับคำสั่งซื้อของผมที่ยังไม่ได้รับสินค้า"


@pytest.mark.parametrize(
    "text",
    [
        THAI * 12,  # vowels and tone marks above and below are combining marks
        "नमस्ते" * 100,  # Devanagari: vowel signs and virama conjuncts
        "e\u0301a\u0308" * 200,  # Latin written decomposed
        "👨\u200d👩\u200d👧🇩🇪👍🏽❤\ufe0f1\ufe0f\u20e3" * 60,  # ZWJ, flag, skin tone, keycap
        "\ud83d\ude00" * 400,  # surrogate pairs (text decoded with "surrogatepass")
        "中文" * 400,
    ],
    ids=["thai", "devanagari", "nfd", "emoji", "surrogates", "cjk"],
)
@pytest.mark.parametrize("max_chars", [40, 100, 400])
def test_text_without_spaces_or_clause_marks_is_cut_between_characters(
    text: str, max_chars: int
) -> None:
    segments = split_sentences(text, max_chars)
    assert "".join(segments) == text
    assert len(segments) > 1 and all(len(s) <= max_chars for s in segments)
    assert not any(splits_a_character(text, pos) for pos in cut_positions(segments))
    assert streamed(text, max_chars) == segments


@pytest.mark.parametrize("lead", range(0, 40, 3))
def test_a_cut_never_falls_inside_a_protected_span(lead: int) -> None:
    glossary = Glossary(["botkit Pro"])
    # Spans slide across the cut point as the lead grows.
    text = "中" * lead + "".join(
        "请看https://x.example/o/4521。" if i % 5 == 0 else piece
        for i, piece in enumerate(
            ["订单ORD-2024-0042号", "{0}", "用botkit Pro发", "写a@b.example"] * 6
        )
    )
    for max_chars in (30, 60):
        segments = split_sentences(text, max_chars, glossary=glossary)
        assert "".join(segments) == text
        assert all(len(s) <= max_chars for s in segments)
        spans = find_spans(text, glossary)
        assert not [
            (pos, text[s:e]) for pos in cut_positions(segments) for s, e in spans if s < pos < e
        ]
        assert streamed(text, max_chars, [5], glossary=glossary) == segments
    # A cut at a space respects the glossary too.
    words = "word " * 9 + "botkit Pro " + "word " * 9
    for max_chars in range(20, 80):
        assert any("botkit Pro" in s for s in split_sentences(words, max_chars, glossary=glossary))


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("We are open from 9 a.m. to 5 p.m. on weekdays.",
         ["We are open from 9 a.m. to 5 p.m. on weekdays."]),
        # A capitalized word after the time starts a sentence; a word in capitals does not.
        ("Open 9 A.M. TO 5 P.M. CET. Call us at 9 A.M. Bye.",
         ["Open 9 A.M. TO 5 P.M. CET. ", "Call us at 9 A.M. ", "Bye."]),
        ("We open at 9 a.m. CET, Monday to Friday. Call at 9 a.m. Thanks.",
         ["We open at 9 a.m. CET, Monday to Friday. ", "Call at 9 a.m. ", "Thanks."]),
    ],
)  # fmt: skip
def test_am_and_pm_end_a_sentence_only_before_a_capitalized_word(
    text: str, segments: list[str]
) -> None:
    assert split_sentences(text) == segments
    assert streamed(text) == segments


# Pieces of text that exercise every rule: sentence ends, abbreviations, times, clause
# marks, code, spans, combining marks, emoji sequences, whitespace runs.
PLAIN = ["a", "Zx", " ", "  ", ". ", "e.g. ", "!", '"', "\n", ",", "，", "、", "。", "中文",  # noqa: RUF001
         "สวั", "e\u0301", "न्त", "👨\u200d👩\u200d👧", "🇩🇪", "\u00a0"]  # fmt: skip
SPANNY = ["a.m. ", "p.m. ", "`", "```", "12", "-", "ORD-7", "x.y", "@", "{0}", "https://x.y/z"]


def test_streaming_gives_the_same_segments_as_whole_text_splitting() -> None:
    # A sentence end is decided only once the whitespace after it has ended.
    assert streamed("Hello.  World", sizes=[7]) == ["Hello.  ", "World"]
    rng = random.Random(11)
    cut_inside = 0  # segments cut by max_chars, not at a sentence end
    for trial in range(400):
        plain = trial % 2 == 0
        pieces = PLAIN if plain else PLAIN + SPANNY
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        max_chars = rng.randint(1, 40)
        whole = split_sentences(text, max_chars)
        assert "".join(whole) == text
        for _ in range(2):
            sizes = [rng.randint(1, 8) for _ in range(5)]
            assert streamed(text, max_chars, sizes) == whole, (text, max_chars, sizes)
        if plain:  # nothing that must stay whole: every segment is bounded
            assert all(len(s.rstrip()) <= max_chars for s in whole), (text, max_chars)
        cut_inside += sum(
            1 for s in whole[:-1] if s[-1] not in ".!?。\n\"'" and not s[-1].isspace()
        )
    assert cut_inside > 100  # the cuts at max_chars are covered, not only sentence ends


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        # Arabic question mark (needs a space, like "?").
        ("أين طلبي؟ لقد طلبته قبل خمسة أيام.", ["أين طلبي؟ ", "لقد طلبته قبل خمسة أيام."]),
        ("ما هذا؟!", ["ما هذا؟!"]),
        # Urdu full stop, Devanagari danda / double danda: no space needed after them.
        ("سلام۔ میرا آرڈر کہاں ہے؟ شکریہ۔", ["سلام۔ ", "میرا آرڈر کہاں ہے؟ ", "شکریہ۔"]),  # noqa: RUF001
        ("नमस्ते।मेरा ऑर्डर कहाँ है? धन्यवाद॥ठीक", ["नमस्ते।", "मेरा ऑर्डर कहाँ है? ", "धन्यवाद॥", "ठीक"]),
        # Armenian full stop, Ethiopic full stop, Myanmar section mark.
        ("Բարեւ։ Որտե՞ղ է իմ պատվերը։", ["Բարեւ։ ", "Որտե՞ղ է իմ պատվերը։"]),  # noqa: RUF001
        ("ሰላም።እንዴት ነህ?", ["ሰላም።", "እንዴት ነህ?"]),
        ("မင်္ဂလာပါ။နေကောင်းလား။", ["မင်္ဂလာပါ။", "နေကောင်းလား။"]),
        # Half-width ! and ? directly before a CJK character (also after a closing quote).
        ("你好!我的订单在哪里?谢谢", ["你好!", "我的订单在哪里?", "谢谢"]),
        ('他说"好!"我走了', ['他说"好!"', "我走了"]),
        ("はい?はい", ["はい?", "はい"]),
        # ...but not before other characters, and never a period ("3.14", "x.中").
        ("a?b x!y 3.14", ["a?b x!y 3.14"]),
        ("见 v1.中文", ["见 v1.中文"]),
    ],
)
def test_sentence_ends_of_more_scripts(text: str, segments: list[str]) -> None:
    assert split_sentences(text) == segments
    assert streamed(text) == segments


SCRIPTS = ["؟", "\u06d4", "।", "॥", "\u0589", "።", "။", "!", "?", "中", "أين", "?中", "!\u201d我",
           " ", ".", "ab", "\n", "`"]  # fmt: skip


def test_streaming_equals_whole_text_splitting_for_the_new_sentence_ends() -> None:
    rng = random.Random(5)
    ends = 0
    for _ in range(300):
        text = "".join(rng.choice(SCRIPTS) for _ in range(rng.randint(0, 30)))
        max_chars = rng.randint(1, 40)
        whole = split_sentences(text, max_chars)
        assert "".join(whole) == text
        for _ in range(2):
            sizes = [rng.randint(1, 6) for _ in range(4)]
            assert streamed(text, max_chars, sizes) == whole, (text, max_chars, sizes)
        ends += sum(1 for s in whole[:-1] if s.rstrip()[-1:] in "؟\u06d4।॥\u0589።။")
    assert ends > 50  # the new terminals were exercised, not only max_chars cuts


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        # An ordinal day before a month name (German capitalizes it) ...
        ("Am 1. Januar 2024 kam nichts.", ["Am 1. Januar 2024 kam nichts."]),
        ("Bis zum 24. Dezember. Danke!", ["Bis zum 24. Dezember. ", "Danke!"]),
        ("Lieferung am 3. März oder 4. Mai.", ["Lieferung am 3. März oder 4. Mai."]),
        ("1. Tammikuuta 2024 alkaen.", ["1. Tammikuuta 2024 alkaen."]),
        # ... or before any lower-case word (where months are written lower-case, and
        # "12.3." dates).
        ("Den 1. januar kom pakken.", ["Den 1. januar kom pakken."]),
        ("Dne 5. května přijde.", ["Dne 5. května přijde."]),
        ("Am 12.3. kam nichts an.", ["Am 12.3. kam nichts an."]),
        ("Az 2024. január 1. napján.", ["Az 2024. január 1. napján."]),
        # A number before any other capitalized word still ends a sentence.
        ("I have 3. Then I left.", ["I have 3. ", "Then I left."]),
        ("Ich habe 3. Meine Frau auch.", ["Ich habe 3. ", "Meine Frau auch."]),
        # The price of the month rule: a sentence ending in a small number before one
        # starting with a month name stays whole (rare; both go to the translator as one).
        ("Ich bestellte 3. Januar war kalt.", ["Ich bestellte 3. Januar war kalt."]),
        # A year (more than two digits) before a capitalized month name: a sentence end.
        ("Das war 2024. Januar war kalt.", ["Das war 2024. ", "Januar war kalt."]),
        ("Your order is ORD-123. March is busy.", ["Your order is ORD-123. ", "March is busy."]),
        # English month names are not in the table ("3. May I ask...").
        ("I counted to 3. May I ask why?", ["I counted to 3. ", "May I ask why?"]),
        ("Am 1. Maier angerufen.", ["Am 1. ", "Maier angerufen."]),
    ],
)
def test_an_ordinal_number_does_not_end_a_sentence(text: str, segments: list[str]) -> None:
    assert split_sentences(text) == segments
    assert streamed(text) == segments
    assert streamed(text, sizes=[3, 5]) == segments


ORDINALS = ["1. ", "24. ", "2024. ", "Januar", "Jan", "Mai", "Maier", "januar", "Then", "x",
            " ", ".", "3", "a.m. ", "\n"]  # fmt: skip


def test_streaming_equals_whole_text_splitting_after_numbers() -> None:
    """Whether "1." ends a sentence can depend on the whole next word ("Jan" may become
    "Januar" or "Janssen"): streaming waits for it and agrees with whole-text splitting."""
    rng = random.Random(7)
    kept = 0
    for _ in range(400):
        text = "".join(rng.choice(ORDINALS) for _ in range(rng.randint(0, 25)))
        max_chars = rng.randint(5, 60)
        whole = split_sentences(text, max_chars)
        assert "".join(whole) == text
        for _ in range(2):
            sizes = [rng.randint(1, 6) for _ in range(4)]
            assert streamed(text, max_chars, sizes) == whole, (text, max_chars, sizes)
        kept += sum(". Januar" in s or ". januar" in s for s in whole)
    assert kept > 50  # the ordinal rule was exercised
