"""Hostile text: what sanitize_text removes and what it must keep."""

from __future__ import annotations

import pytest

from botkit.sanitize import check_length, sanitize_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b", "ab"),
        ("\x00\x00", ""),
        ("lone \ud800 high \udfff low", "lone  high  low"),
        ("bell\x07 esc\x1b[31mred", "bell esc[31mred"),
        ("del\x7f c1\x85\x9b", "del c1"),
        ("a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("", ""),
    ],
)
def test_removes_unsafe_characters(raw: str, clean: str) -> None:
    assert sanitize_text(raw) == clean


@pytest.mark.parametrize(
    "text",
    [
        "Grüße, ça va? ¿Qué tal?",
        "こんにちは 世界",
        "مرحبا \u200f بالعالم",  # right-to-left mark is a format char, not a control
        "family: \U0001f468\u200d\U0001f469\u200d\U0001f467",  # zero-width joiners
        "\U0001f600 valid astral pair",
    ],
)
def test_keeps_real_text(text: str) -> None:
    assert sanitize_text(text) == text
    assert sanitize_text(text).encode("utf-8")


def test_idempotent_and_encodable() -> None:
    hostile = "".join(chr(c) for c in range(0, 0xE000, 7))  # crosses controls and surrogates
    once = sanitize_text(hostile)
    assert sanitize_text(once) == once
    once.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in once


def test_length_check_never_truncates() -> None:
    text = "x" * 5000 + "\x00"
    checked = check_length(text, 4000)
    assert checked.too_long
    assert checked.length == 5000
    assert checked.text == "x" * 5000
    assert not check_length("x" * 4000, 4000).too_long
