"""Long replies in scripts with marks and in emoji are cut between characters as shown:
no Slack message starts with a detached vowel sign, accent or joiner (the splitter is
``botkit.textsplit``, shared with Telegram)."""

from __future__ import annotations

import random

import pytest
import regex
from graphemes import CLUSTERS as SHARED_CLUSTERS
from graphemes import DEVANAGARI, FAMILY, FLAGS, THAI, assert_whole_characters

from connectors.slack._text import escape, split_text
from connectors.slack._writer import ReplyWriter, Target

# Slack escapes "&": its entities must stay whole too.
CLUSTERS = [*SHARED_CLUSTERS[:8], "&", *SHARED_CLUSTERS[8:]]


def test_thai_without_spaces_over_200_limits() -> None:
    # The measurement of the review: 125 of the pieces started with a detached mark.
    text = THAI * 200
    for limit in range(2900, 3100):
        pieces = split_text(text, limit)
        assert "".join(pieces) == text
        assert_whole_characters(text, pieces, limit)


@pytest.mark.parametrize("limit", range(5, 30))
def test_devanagari_words_longer_than_the_limit(limit: int) -> None:
    assert_whole_characters(DEVANAGARI, split_text(DEVANAGARI, limit), limit)


@pytest.mark.parametrize("limit", range(14, 40))
def test_joined_family_emoji_stay_whole(limit: int) -> None:
    text = FAMILY * 30
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(p.startswith(FAMILY) for p in pieces)


@pytest.mark.parametrize("limit", range(3, 30))
def test_flags_are_not_cut_in_two(limit: int) -> None:
    text = FLAGS * 20
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(len(p) % 2 == 0 for p in pieces)  # whole pairs of regional indicators


def test_escaped_pieces_of_a_reply_keep_their_characters() -> None:
    # What the writer posts: split by characters shown, then escaped.
    writer = ReplyWriter(None, Target("C1"), 50)  # type: ignore[arg-type]
    text = ("R&D " + THAI) * 20
    pieces = writer._pieces(text, True, ())
    assert "".join(pieces).replace(" ", "") == escape(text).replace(" ", "")
    assert not any(regex.match(r"\p{M}", p) for p in pieces)


def test_random_texts_over_many_limits() -> None:
    rng = random.Random(20261129)
    for _ in range(400):
        text = "".join(rng.choice(CLUSTERS) for _ in range(rng.randint(1, 300)))
        limit = rng.choice([rng.randint(14, 60), rng.randint(60, 900)])
        assert_whole_characters(text, split_text(text, limit), limit)
        escaped = escape(text)  # the second split, of escaped text (a section block)
        assert_whole_characters(escaped, split_text(escaped, limit), limit)


@pytest.mark.parametrize("limit", [9, 25, 40])
def test_pieces_of_a_growing_thai_text_never_change(limit: int) -> None:
    full = (THAI + " " + DEVANAGARI + FAMILY + FLAGS) * 3
    final = split_text(full, limit)
    for n in range(1, len(full)):
        partial = split_text(full[:n], limit)
        assert partial[:-1] == final[: len(partial) - 1], n
