"""The shared splitter: cuts only between grapheme clusters, under either measure, and the
parts of a growing text never change."""

from __future__ import annotations

import random
import re

import pytest
import regex

from botkit.textsplit import (
    CODE_POINTS,
    UTF16_UNITS,
    Break,
    Rules,
    complete_clusters,
    next_cut,
    split_text,
)

# Rules of the two kinds the connectors use: cut after a separator, or before whitespace.
AFTER = Rules(UTF16_UNITS, (Break(re.compile("\n\n")), Break(re.compile(" "))))
BEFORE = Rules(CODE_POINTS, (Break(re.compile(r"\s"), floor=4, before=True),))

THAI = "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"  # vowel signs and tone marks (Mn), no spaces
DEVANAGARI = "क्षत्रियों की हिन्दी"  # conjuncts (virama), vowel signs (Mc/Mn)
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
FLAGS = "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea\U0001f1ef\U0001f1f5"  # FR DE JP
# Whole clusters (and separators) a random text is made of.
CLUSTERS = [
    "a",
    "\u0e01\u0e34",  # Thai KO KAI + SARA I
    "\u0e01\u0e48\u0e33",  # KO KAI + MAI EK + SARA AM (a spacing mark of category Lo)
    "\u0915\u094d\u0937\u093f",  # Devanagari KSSA conjunct + vowel sign I
    "e\u0301",
    FAMILY,
    "\U0001f1eb\U0001f1f7",
    "1\ufe0f\u20e3",  # keycap one
    "\U0001f44d\U0001f3fd",  # thumbs up, medium skin tone
    "\u5b57",
    " ",
    "\n\n",
]


def assert_whole_clusters(text: str, parts: list[str], rules: Rules, limit: int) -> None:
    """Each part fits, no part starts or ends inside a cluster of ``text``, and only
    whitespace at the cuts is lost."""
    bounds = {m.end() for m in regex.finditer(r"\X", text)} | {0}
    at = 0
    for part in parts:
        assert rules.measure.length(part) <= limit, (limit, part)
        start = text.index(part, at)
        assert not text[at:start].strip(), (limit, text[at:start])
        assert start in bounds and start + len(part) in bounds, (limit, part[:3], part[-3:])
        at = start + len(part)
    assert not text[at:].strip()


@pytest.mark.parametrize("rules", [AFTER, BEFORE], ids=["utf16-after", "chars-before"])
@pytest.mark.parametrize(
    ("text", "limits"),
    [
        (THAI * 30, range(10, 60)),
        (DEVANAGARI.replace(" ", "") * 30, range(10, 40)),
        (DEVANAGARI * 30, range(5, 40)),
        (FAMILY * 40, range(24, 60)),
        (FLAGS * 40, range(5, 40)),
    ],
    ids=["thai", "devanagari", "devanagari-spaced", "family", "flags"],
)
def test_cuts_fall_between_grapheme_clusters(rules: Rules, text: str, limits: range) -> None:
    for limit in limits:
        parts = split_text(text, limit, rules)
        assert_whole_clusters(text, parts, rules, limit)
        assert not any(p[0] in "\u200d\u200c" or regex.match(r"\p{M}", p) for p in parts)


@pytest.mark.parametrize("rules", [AFTER, BEFORE], ids=["utf16-after", "chars-before"])
def test_random_texts_over_many_limits(rules: Rules) -> None:
    # Clusters are at most 11 UTF-16 units: from 24 on, stepping back to the last whole
    # cluster never goes below half the window, so every cut is between clusters.
    rng = random.Random(20261129)
    for _ in range(300):
        text = "".join(rng.choice(CLUSTERS) for _ in range(rng.randint(1, 400)))
        limit = rng.choice([rng.randint(24, 80), rng.randint(80, 1000)])
        parts = split_text(text, limit, rules)
        assert_whole_clusters(text, parts, rules, limit)


@pytest.mark.parametrize("rules", [AFTER, BEFORE], ids=["utf16-after", "chars-before"])
@pytest.mark.parametrize("seed", range(4))
def test_parts_of_a_growing_text_never_change(rules: Rules, seed: int) -> None:
    rng = random.Random(seed)
    full = "".join(rng.choice(CLUSTERS) for _ in range(150))
    limit = rng.randint(24, 60)
    final = split_text(full, limit, rules)
    for n in range(1, len(full)):
        partial = split_text(full[:n], limit, rules)
        assert partial[:-1] == final[: len(partial) - 1], (seed, n)


def test_a_cluster_too_long_to_step_back_over_is_cut_at_the_limit() -> None:
    zalgo = "a" + "\u0301" * 100
    parts = split_text(zalgo, 40, BEFORE)
    assert [len(p) for p in parts] == [40, 40, 21] and "".join(parts) == zalgo
    # A whole cluster within reach is kept whole: the cut steps back before it.
    assert split_text("b" * 36 + FAMILY + "c" * 20, 40, BEFORE)[0] == "b" * 36


def test_utf16_measure_counts_astral_characters_twice() -> None:
    parts = split_text("\U0001f600" * 5, 4, AFTER)
    assert parts == ["\U0001f600" * 2, "\U0001f600" * 2, "\U0001f600"]
    assert split_text("abc", 3, AFTER) == ["abc"] and split_text("", 3, AFTER) == [""]


def test_a_limit_below_the_widest_character_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_text("abc", 1, AFTER)
    assert split_text("abc", 1, BEFORE) == ["a", "b", "c"]


@pytest.mark.parametrize("rules", [AFTER, BEFORE], ids=["utf16-after", "chars-before"])
def test_next_cut_of_an_empty_part_is_where_split_text_cuts(rules: Rules) -> None:
    rng = random.Random(3)
    for _ in range(200):
        text = "".join(rng.choice(CLUSTERS) for _ in range(rng.randint(1, 200)))
        limit = rng.randint(24, 300)
        cut = next_cut(text, limit, rules)
        assert text[:cut].rstrip() == split_text(text, limit, rules)[0].rstrip()


@pytest.mark.parametrize("rules", [AFTER, BEFORE], ids=["utf16-after", "chars-before"])
@pytest.mark.parametrize("seed", range(6))
def test_parts_filled_piece_by_piece_end_between_clusters(rules: Rules, seed: int) -> None:
    # As a streamed message is filled: pieces of a growing text end where its clusters
    # are complete (``complete_clusters``); a part is ended by ``next_cut``.
    rng = random.Random(seed)
    text = "".join(rng.choice(CLUSTERS) for _ in range(300))
    limit = rng.randint(24, 80)
    bounds = {m.end() for m in regex.finditer(r"\X", text)} | {0}
    sent, held, end = 0, "", 0
    while sent < len(text):
        end = min(len(text), end + rng.randint(1, 6))
        final = end == len(text)
        piece = text[sent:end]
        piece = piece if final else piece[: complete_clusters(piece)]
        while True:
            cut = next_cut(piece, limit, rules, held)
            if cut == len(piece):
                break
            assert sent + cut in bounds, (seed, sent + cut)
            assert rules.measure.length(held + piece[:cut]) <= limit
            assert held or cut > 0
            gap = len(piece[cut:]) - len(piece[cut:].lstrip())
            sent, piece, held = sent + cut + gap, piece[cut + gap :], ""
        assert sent + len(piece) in bounds
        held, sent = held + piece, sent + len(piece)
        if final:
            break


def test_next_cut_reads_the_clusters_the_held_text_began() -> None:
    # After half a flag, the pairs of the window are shifted by one; after a joiner the
    # next emoji belongs to the held one: no cut before the window, nor inside a pair.
    cut = next_cut(FLAGS * 4, 16, BEFORE, held="x" * 7 + "\U0001f1eb")
    assert cut % 2 == 1
    family = next_cut(FAMILY[2:] + "abc" + "d" * 30, 16, BEFORE, held="x" * 8 + FAMILY[:2])
    assert family == len(FAMILY[2:] + "a")  # the last place that fits past the emoji
    # With no break, a part ends with what it holds when that ends a cluster.
    assert next_cut(THAI * 3, 40, BEFORE, held="a" * 30) == 0
    assert next_cut("abc", 40, BEFORE, held="a" * 30) == 3  # it all fits
    # Breaks are looked for from the start of the part: a quarter of it, not of the room.
    assert next_cut("bb cc dd " + "e" * 20, 40, BEFORE, held="a" * 30) == 8


def test_complete_clusters_leaves_out_the_last_one() -> None:
    assert complete_clusters("") == 0 and complete_clusters("a") == 0
    assert complete_clusters("ab\u0e01\u0e34") == 2  # KO KAI + SARA I may take a tone mark
    assert complete_clusters(FAMILY + "\U0001f1eb") == len(FAMILY)
    assert complete_clusters("xy" + FAMILY[:3]) == 2  # "man, joiner, woman" may go on
