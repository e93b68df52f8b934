"""The number and URL scans stay linear on hostile text, and find what they found before.

No timed assertions (``benchmarks/glossary.py`` times the hostile texts): a run of letter
parts without a digit is asserted to be one match (the scan resumes after it), and the old
pattern and the old URL trimming are kept here as oracles for what is found.
"""

from __future__ import annotations

import random
import re

from botkit.language.protect import _CODE, _NO_WORD_BEFORE, _NUMBER, _PART, _W, _trim_url, protect

OLD_NUMBER = re.compile(
    f"{_NO_WORD_BEFORE}#?(?:[A-Za-z]++[\\-_/])*+{_PART}"
    f"(?:[\\-/#](?:{_PART}|{_CODE})|[.,:]\\d{_W}*+)*+"
)


def old_trim_url(url: str) -> str:
    while url:
        last = url[-1]
        if last in ".,;:!?'\"*_\u2026":
            url = url[:-1]
        elif last in ")]}" and url.count(last) > url.count({")": "(", "]": "[", "}": "{"}[last]):
            url = url[:-1]
        else:
            break
    return url


def number_spans(text: str) -> list[tuple[int, int]]:
    """The ids ``_NUMBER`` finds: its ``letters`` matches (runs without a digit) skipped."""
    return [m.span() for m in _NUMBER.finditer(text) if m.group("letters") is None]


def test_a_run_of_letter_parts_is_scanned_once() -> None:
    # "a-a-a-..." (4,000 characters, no digit) was scanned to its end again from each
    # hyphen: 130 ms per message. The run is now one match, so the scan resumes after
    # it; a run ending in an id is one match too.
    for run in ("a-" * 2048, "ab-" * 1400, "A_" * 2048, "a-b_" * 1000, "a-" * 2047 + "#"):
        matches = list(_NUMBER.finditer(run))
        assert len(matches) == 1, run[:12]
        assert matches[0].group("letters") == run.rstrip("#")
    assert [m.span() for m in _NUMBER.finditer("a-" * 2048 + "7")] == [(0, 4097)]
    assert protect("a-" * 2048).spans == ()


def test_numbers_are_found_as_before_in_everyday_ids() -> None:
    rng = random.Random(3)
    parts = ["SKU", "ORD", "a", "EU", "xl", "Ab", "2024", "42", "A12B", "5kg", "é", "ß1", "x"]
    parts += ["B", "Größe", "1", "_", "#", ""]
    seps = ["-", "/", "_", "#", ".", ",", ":", " ", "-", "/", "-", "é", ")"]
    for _ in range(4000):
        words = []
        for _ in range(rng.randint(1, 4)):
            # up to 20 parts: runs of letter parts longer than the 8 once kept
            word = "".join(rng.choice(parts) + rng.choice(seps) for _ in range(rng.randint(1, 20)))
            words.append(("#" if rng.random() < 0.2 else "") + word)
        text = " ".join(words)
        assert number_spans(text) == [m.span() for m in OLD_NUMBER.finditer(text)], text


def test_ids_with_many_letter_parts_are_protected_whole() -> None:
    cases = {
        "order A-B-C-D-E-F-G-H-I-J-123 please": "A-B-C-D-E-F-G-H-I-J-123",
        "a-a-a-a-a-a-a-a-a-a-a-a-b1": "a-a-a-a-a-a-a-a-a-a-a-a-b1",
        "see src/main/java/com/example/project/module/sub/util/File2 now": (
            "src/main/java/com/example/project/module/sub/util/File2"
        ),
        # starts the old pattern took after a run's first part could not start an id
        "Größe-XL-42": "XL-42",
        "éa-b-1": "b-1",
    }
    for text, span in cases.items():
        assert number_spans(text) == [m.span() for m in OLD_NUMBER.finditer(text)], text
        assert protect(text).spans == (span,), text
    spans = protect("ids INV-EU-2024-7, a-b-c-d-e-f-g-h-9 and a-b-c-d-e-f-g-h-i-j-9").spans
    assert spans == ("INV-EU-2024-7", "a-b-c-d-e-f-g-h-9", "a-b-c-d-e-f-g-h-i-j-9")


def test_urls_are_trimmed_as_before() -> None:
    rng = random.Random(5)
    alphabet = "ab/.,;:!?'\"*_\u2026()[]{}"
    for _ in range(5000):
        url = "http://x" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert _trim_url(url) == old_trim_url(url), url
    for url in (
        "http://x" + ")" * 4088,
        "http://x" + "(" * 2000 + ")" * 2088,
        "http://x" + ".)" * 2044,
    ):
        assert _trim_url(url) == old_trim_url(url)
