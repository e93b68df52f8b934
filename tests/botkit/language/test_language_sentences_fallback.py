"""The fallback cut (no sentence end within ``max_chars``) looks at few positions, and
cuts where it cut before.

The count of positions checked for splitting a character stands in for time (no timed
assertions): the check ran on every position of each 400-character window, ~3,000 calls
and 7 ms for a 4,096-character text without spaces (``benchmarks/glossary.py``).
"""

from __future__ import annotations

import random

import pytest

from botkit.language import sentences, split_sentences
from botkit.language.protect import find_spans
from botkit.language.sentences import (
    _CLAUSE_MARKS,
    _NO_BREAK_SPACES,
    _Code,
    _fallback_cut,
    _splits_character,
)


def old_fallback_cut(window: str, limit: int) -> int | None:
    """``_fallback_cut`` before (without a glossary)."""
    reach = limit - min(sentences._LOOKAHEAD, limit // 4)
    blocked = bytearray(reach + 1)
    for start, end in [*_Code(window).ranges(), *find_spans(window)]:
        stop = reach + 1 if end >= len(window) else min(end, reach + 1)
        blocked[start + 1 : stop] = b"\x01" * max(0, stop - start - 1)
    usable = [
        p for p in range(reach, 0, -1) if not blocked[p] and not window[p - 1] == "`" == window[p]
    ]
    whole = [p for p in usable if not _splits_character(window, p)]
    for p in whole:
        c = window[p - 1]
        if (c.isspace() and c not in _NO_BREAK_SPACES) or c in _CLAUSE_MARKS:
            return p
    if whole:
        return whole[0]
    return next((p for p in usable if not "\udc00" <= window[p] <= "\udfff"), None)


def test_cuts_where_it_cut_before() -> None:
    rng = random.Random(11)
    alphabet = "ab \u00a0,;-\u0301\u200d`x1.\U0001f1e6\u0e40\u0e01\u094d\u0915\r\n"
    for _ in range(3000):
        limit = rng.randint(1, 40)
        window = "".join(rng.choice(alphabet) for _ in range(limit + 1))
        assert _fallback_cut(window, limit, None) == old_fallback_cut(window, limit), window


@pytest.mark.parametrize("text", ["a-" * 2048, "http://x" + ")" * 4088, "x" * 4096])
def test_a_long_text_without_spaces_checks_few_positions(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    def counting(window: str, pos: int) -> bool:
        nonlocal calls
        calls += 1
        return _splits_character(window, pos)

    monkeypatch.setattr(sentences, "_splits_character", counting)
    segments = split_sentences(text)
    assert "".join(segments) == text
    assert calls <= 2 * len(segments)  # one or two per cut, not one per position
