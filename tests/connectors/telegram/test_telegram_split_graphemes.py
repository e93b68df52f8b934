"""Long answers are cut between characters as shown, counted in UTF-16 units: flags (pairs
of regional indicators) stay whole too, as letters with their marks and joined emoji do
(the splitter is ``botkit.textsplit``, shared with Slack)."""

from __future__ import annotations

import random

import graphemes
import pytest
from graphemes import CLUSTERS, DEVANAGARI, FAMILY, FLAGS, THAI

from connectors.telegram.split import split_text, utf16_len


def assert_whole_characters(text: str, parts: list[str], limit: int) -> None:
    """Telegram counts UTF-16 units."""
    graphemes.assert_whole_characters(text, parts, limit, utf16_len)


def test_thai_without_spaces_over_200_limits() -> None:
    text = THAI * 300
    for limit in range(3990, 4190):
        parts = split_text(text, limit)
        assert "".join(parts) == text
        assert_whole_characters(text, parts, limit)


@pytest.mark.parametrize("limit", range(5, 30))
def test_devanagari_words_longer_than_the_limit(limit: int) -> None:
    assert_whole_characters(DEVANAGARI, split_text(DEVANAGARI, limit), limit)


@pytest.mark.parametrize("limit", range(22, 50))
def test_joined_family_emoji_stay_whole(limit: int) -> None:
    text = FAMILY * 30
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(p.startswith(FAMILY) for p in parts)


@pytest.mark.parametrize("limit", range(5, 40))
def test_flags_are_not_cut_in_two(limit: int) -> None:
    text = FLAGS * 20
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(len(p) % 2 == 0 for p in parts)  # whole pairs of regional indicators


def test_random_texts_over_many_limits() -> None:
    rng = random.Random(20261129)
    for _ in range(400):
        text = "".join(rng.choice(CLUSTERS) for _ in range(rng.randint(1, 300)))
        limit = rng.choice([rng.randint(24, 80), rng.randint(80, 1500)])
        assert_whole_characters(text, split_text(text, limit), limit)


@pytest.mark.parametrize("limit", [12, 25, 40])
def test_parts_of_a_growing_text_never_change(limit: int) -> None:
    full = (THAI + " " + DEVANAGARI + FAMILY + FLAGS) * 3
    final = split_text(full, limit)
    for n in range(1, len(full)):
        partial = split_text(full[:n], limit)
        assert partial[:-1] == final[: len(partial) - 1], n
