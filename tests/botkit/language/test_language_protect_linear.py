"""The number and URL scans stay linear on hostile text, and find what they found before.

No timed assertions (``benchmarks/glossary.py`` times the hostile texts): the number
pattern's letter prefix is asserted bounded on the pattern itself, and the old pattern
and the old URL trimming are kept here as oracles for what is found.
"""

from __future__ import annotations

import random
import re
from re import _constants, _parser

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


def unbounded_letter_repeats(pattern: str) -> list[str]:
    """Repeats without an upper bound whose body starts with an ASCII-letter class."""
    found = []

    def walk(tree: _parser.SubPattern) -> None:
        for op, av in tree.data:
            if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT):
                _low, high, body = av
                first = body.data[0] if body.data else None
                if first and first[0] is _constants.SUBPATTERN:
                    first = first[1][3].data[0]
                starts_with_letters = (
                    first is not None
                    and first[0] in (_constants.MAX_REPEAT, _constants.POSSESSIVE_REPEAT)
                    and str(first[1][2]).startswith("[(IN, [(RANGE, (65, 90))")
                )
                if high == _constants.MAXREPEAT and starts_with_letters:
                    found.append(str(body))
                walk(body)
            elif op is _constants.SUBPATTERN:
                walk(av[3])
            elif op is _constants.BRANCH:
                for b in av[1]:
                    walk(b)

    walk(_parser.parse(pattern))
    return found


def test_the_letter_prefix_of_an_id_is_bounded() -> None:
    # "a-a-a-..." (4,000 characters, no digit) was scanned to its end again from each
    # hyphen: 130 ms per message. The old pattern has the unbounded prefix; ours not.
    assert unbounded_letter_repeats(OLD_NUMBER.pattern)
    assert not unbounded_letter_repeats(_NUMBER.pattern)


def test_numbers_are_found_as_before_in_everyday_ids() -> None:
    rng = random.Random(3)
    parts = ["SKU", "ORD", "a", "EU", "xl", "Ab", "2024", "42", "A12B", "5kg", "é", "ß1", "x"]
    seps = ["-", "/", "_", "#", ".", ",", ":", " ", "-", "/"]
    for _ in range(3000):
        words = []
        for _ in range(rng.randint(1, 6)):
            # at most 8 letter parts in a row: the bound
            word = "".join(rng.choice(parts) + rng.choice(seps) for _ in range(rng.randint(1, 8)))
            words.append(("#" if rng.random() < 0.2 else "") + word)
        text = " ".join(words)
        assert [m.span() for m in _NUMBER.finditer(text)] == [
            m.span() for m in OLD_NUMBER.finditer(text)
        ], text


def test_a_long_run_of_letter_parts_still_protects_its_number() -> None:
    spans = protect("ids INV-EU-2024-7, a-b-c-d-e-f-g-h-9 and a-b-c-d-e-f-g-h-i-j-9").spans
    assert spans[:2] == ("INV-EU-2024-7", "a-b-c-d-e-f-g-h-9")
    assert spans[2].endswith("-i-j-9")  # the last 8 letter parts go with it


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
