"""``estimate_tokens``: the script-aware estimate history budgets use without a
tokenizer. Exact expectations per script, so the ASCII fast path and the per-range
weights cannot drift apart."""

from __future__ import annotations

import pytest

from botkit._token_estimate import estimate_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 1),  # never 0
        ("abc", 1),
        ("abcd" * 10, 10),  # ASCII: four characters a token
        ("abcd" * 10 + "e", 11),  # rounded up
        ("我的订单在哪里", 7),  # CJK: one a character
        ("ありがとう", 5),  # kana
        ("สวัสดี", 6),  # Thai
        ("привет", 3),  # Cyrillic: two characters a token
        ("مرحبا", 3),  # Arabic: 2.5 rounded up
        ("😀", 2),  # astral: two tokens
        ("order 12345 是什么", 6),  # 12 ASCII characters (3) + 3 ideographs
        ("café", 2),  # 3/4 + 1/2, rounded up
        ("\ud800", 1),  # a lone surrogate counts, and does not raise
    ],
)
def test_each_script_counts_as_documented(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens
