"""The hand-off plugin's keyword matcher on its own: whole words, in any script."""

from __future__ import annotations

import pytest

from botkit.handoff.matching import KeywordMatcher


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Talk  to a HUMAN!", "talk to a human"),
        ("please, talk to a human.", "talk to a human"),
        ("talk to a humans", None),
        ("मुझे एजेंट चाहिए", "एजेंट"),  # "I need an agent"
        # A vowel sign (a combining mark) is part of the word: "इंसान" ("human") is not
        # found in "इंसानों" ("humans"), nor "एजेंट" in "एजेंटों".
        ("क्या इंसान से बात हो सकती है", "इंसान"),
        ("इंसानों की बात", None),
        ("एजेंटों से", None),
        ("আমি মানুষের সাথে কথা বলতে চাই", None),  # Bengali: মানুষ + a vowel sign
        ("মানুষ চাই", "মানুষ"),
    ],
)
def test_keywords_are_whole_words(text: str, found: str | None) -> None:
    matcher = KeywordMatcher(["talk to a human", "इंसान", "एजेंट", "মানুষ"], max_chars=200)
    assert matcher.match(text) == found
