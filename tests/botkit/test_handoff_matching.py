"""The hand-off plugin's keyword matcher on its own: whole words, in any script."""

from __future__ import annotations

import unicodedata

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


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # Accents, Unicode normalization, case and punctuation fold as for intents.
        ("Quiero atención al cliente", "atención al cliente"),
        ("Quiero atencion al cliente", "atención al cliente"),
        ("Quiero " + unicodedata.normalize("NFD", "ATENCIÓN al cliente"), "atención al cliente"),
        ("¿atención-al-cliente?", "atención al cliente"),
        ("\uff25-\uff2d\uff21\uff29\uff2c support", "e-mail support"),  # full-width (NFKC)
        ("MIT EINEM MENSCHEN SPRECHEN", "mit einem menschen sprechen"),
        ("Straße", "strasse"),  # casefolded: ß is ss
        ("atenciones al cliente", None),  # still whole words
        ("我要人工客服", "人工"),  # pairs of characters in scripts without spaces
        ("我要人", None),
        ("🆘 please", "🆘"),  # no letters: looked for as written
        ("x🆘", None),  # not next to a letter
    ],
)
def test_keywords_fold_like_intent_keywords(text: str, found: str | None) -> None:
    phrases = ["atención al cliente", "e-mail support", "mit einem menschen sprechen",
               "strasse", "人工", "🆘"]  # fmt: skip
    assert KeywordMatcher(phrases, max_chars=200).match(text) == found


def test_the_longest_phrase_at_the_first_place_wins_and_long_messages_never_match() -> None:
    matcher = KeywordMatcher(["agent", "human agent", "person"], max_chars=40)
    assert matcher.match("a person or a human agent") == "person"
    assert matcher.match("a human agent, a person") == "human agent"
    assert matcher.match("x" * 40 + " agent") is None
    assert KeywordMatcher([], max_chars=40).match("agent") is None
