"""The glossary's trie-shaped pattern matches exactly what the old alternation matched.

The old implementation (one ``edge + term + edge`` alternative per term, longest first,
IGNORECASE) is kept here as the oracle; random glossaries with shared prefixes, case
variants, terms inside words, overlapping terms, regex metacharacters and non-Latin
scripts are compared span for span. How fast the trie is is the benchmark's business
(``benchmarks/glossary.py``: no timed assertions here); what makes it fast, one shared
copy of each prefix and few alternatives per group, is asserted on the pattern.
"""

# ruff: noqa: RUF001  (look-alike letters of other scripts are what is tested)
from __future__ import annotations

import random
import re
import sys

import pytest

from botkit.language import Glossary
from botkit.language._fold import fold_text, nfc
from botkit.language._glossary_regex import _cased, _forms, glossary_pattern
from botkit.language.protect import _W, find_spans


def old_term_pattern(term: str, word: str) -> str:
    """``botkit.language.protect._term_pattern`` before the trie (``word`` was ``_W``)."""

    def edge(c: str, lookahead: bool) -> str:
        if not c.isalnum():
            return ""  # "C++": no word boundary after a symbol
        return f"(?!{word})" if lookahead else f"(?<!{word})"

    return edge(term[0], False) + re.escape(term) + edge(term[-1], True)


def old_pattern(terms: list[str], word: str = _W) -> re.Pattern[str] | None:
    """``Glossary.__init__`` before the trie."""
    kept = tuple(dict.fromkeys(nfc(t.strip()) for t in terms if t.strip()))
    folded = dict.fromkeys(f for f in map(fold_text, kept) if f)
    parts = [old_term_pattern(t, word) for t in sorted(folded, key=len, reverse=True)]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def old_spans(terms: list[str], text: str, word: str = _W) -> list[tuple[int, int]]:
    pattern = old_pattern(terms, word)
    return [m.span() for m in pattern.finditer(text)] if pattern else []


# The old pattern costs ``re`` ~12 ms per term to compile with the real ``_W`` (its CJK
# ranges, case-folded): the many random glossaries use a word class of the same shape
# that agrees with it on every character they hold (digits and letters, but the
# unspaced scripts'); the real one is checked below.
SMALL_W = "(?:\\d|[^\\W中文のカ한])"

# Case classes Python's re treats specially (Kelvin sign, long s, dotted/dotless i,
# sharp s, final sigma, the iota that U+0345 matches), other scripts, combining marks,
# symbols, metacharacters, spaces, hyphens, digits.
ALPHABET = (
    "abcABC kK\u212aſsSİiIı ßẞσςΣ ιΙ\u0345\u1fbe éÉ\u0301 "
    "ДдЖж 中文の カ 한 ع 12 -_.+*?()[]|\\$^{}# "
)


def random_terms(rng: random.Random) -> list[str]:
    stems = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4))) for _ in range(3)]
    terms = []
    for _ in range(rng.randint(1, 12)):
        term = rng.choice(stems)  # shared prefixes
        for _ in range(rng.randint(0, 3)):
            term += rng.choice([rng.choice(ALPHABET), rng.choice(stems)])
        if rng.random() < 0.3:
            term = term.swapcase()  # case variants of another term
        terms.append(term)
    return terms


def random_text(rng: random.Random, terms: list[str]) -> str:
    pieces = []
    for _ in range(rng.randint(1, 12)):
        roll = rng.random()
        if roll < 0.4 and terms:
            term = rng.choice(terms)
            pieces.append(term.upper() if rng.random() < 0.2 else term)
        elif roll < 0.6 and terms:
            pieces.append(rng.choice(terms)[: rng.randint(1, 3)])  # a term's prefix
        else:
            pieces.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 5))))
    return "".join(pieces)


def new_spans(terms: list[str], text: str, word: str) -> list[tuple[int, int]]:
    kept = dict.fromkeys(nfc(t.strip()) for t in terms if t.strip())
    folded = list(dict.fromkeys(f for f in map(fold_text, kept) if f))
    if not folded:
        return []
    return [m.span() for m in glossary_pattern(folded, word).finditer(text)]


@pytest.mark.parametrize("seed", range(8))
def test_trie_finds_the_spans_the_alternation_found(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        terms = random_terms(rng)
        for _ in range(4):
            text = random_text(rng, terms)
            try:
                expected = old_spans(terms, text, SMALL_W)
            except re.error:  # pragma: no cover - an old pattern re refused
                continue
            assert new_spans(terms, text, SMALL_W) == expected, (terms, text)


def test_glossary_finds_the_spans_the_old_glossary_found() -> None:
    # The real word class, end to end through Glossary (and the edges of the text).
    rng = random.Random(99)
    for _ in range(12):
        terms = random_terms(rng)
        glossary = Glossary(terms)
        for _ in range(15):
            text = random_text(rng, terms)
            assert [m.span() for m in glossary.finditer(text)] == old_spans(terms, text)


@pytest.mark.parametrize(
    ("terms", "text"),
    [
        (["botkit", "botkit Pro", "C++", "Café Plus"], "I love BOTKIT pro, botkit, botkits, C++x"),
        (["a", "ab", "abc", "abcd"], "abce ab abc abcd abcde a"),
        (["Pro", "Pro+", "Pro++"], "Pro+ Pro++x Prox Pro+x"),
        (["k", "K", "\u212a"], "k K \u212a kk"),
        (["ß", "SS", "ẞx"], "ß ẞ ss ßX ẞX"),
        (["İstanbul", "istanbul"], "ISTANBUL İSTANBUL ıstanbul"),
        (["ι", "Ιx", "\u1fbe"], "\u0345 \u0345x ι Ι \u1fbe ιx"),
        (["订单", "订单号"], "订单号12 订单"),
        ([".NET", "a|b", "(x)", "$5", "\\d"], ".NET a|b (x) $5 \\d .NETx"),
        (["e\u0301", "é"], "é e\u0301 éé"),
    ],
)  # fmt: skip
def test_chosen_cases_match_the_old_glossary(terms: list[str], text: str) -> None:
    glossary = Glossary(terms)
    assert [m.span() for m in glossary.finditer(text)] == old_spans(terms, text)


def test_a_term_ending_with_u0345_falls_back_to_the_alternation() -> None:
    terms = ["a\u0345", "ab"]
    glossary = Glossary(terms)
    for text in ("a\u0345 ab a\u0345b aι abc", "aΙx a\u0345"):
        assert [m.span() for m in glossary.finditer(text)] == old_spans(terms, text)


def test_word_class_ignores_case_the_same_with_the_flag_off() -> None:
    # The trie writes the word class as (?-i:...) (compiling it case-folded costs ~6 ms a
    # copy); every code point is a word character under both or under neither.
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    folded = re.compile(_W, re.IGNORECASE)
    exact = re.compile(f"(?-i:{_W})", re.IGNORECASE)
    assert [m.start() for m in folded.finditer(everything)] == [
        m.start() for m in exact.finditer(everything)
    ]


def hostile_glossary() -> tuple[list[str], str]:
    prefix = ("botkit enterprise " * 11)[:190]
    return [f"{prefix}{i:010d}" for i in range(1000)], prefix


def test_shared_prefixes_are_written_once() -> None:
    # The old alternation held the 190-character prefix 1,000 times: the engine tried it
    # 1,000 times at every position of a text repeating it (0.35 s on 4,096 characters).
    terms, prefix = hostile_glossary()
    pattern = Glossary(terms)._pattern
    assert pattern is not None
    assert pattern.pattern.count(re.escape(prefix)) == 1
    # Each group offers at most one alternative per distinct next character (10 digits)
    # and the end of a term: bounded branching at every position of the text.
    assert max_alternatives(pattern.pattern) <= 11


def max_alternatives(pattern: str) -> int:
    """Most top-level ``|`` alternatives of any group of ``pattern``."""
    from re import _parser  # the stdlib's own parse tree: no hand-written parsing

    def walk(tree: _parser.SubPattern) -> int:
        most = 1
        for op, av in tree.data:
            if op is _parser.BRANCH:
                most = max(most, len(av[1]), *(walk(b) for b in av[1]))
            elif op is _parser.SUBPATTERN:
                most = max(most, walk(av[3]))
            elif op in (_parser.ASSERT, _parser.ASSERT_NOT):
                most = max(most, walk(av[1]))
        return most

    return walk(_parser.parse(pattern, re.IGNORECASE))


def test_hostile_text_against_hostile_glossary_is_protected_like_before() -> None:
    terms, prefix = hostile_glossary()
    text = f"{prefix}0000000042 and {prefix} {prefix}000000004 {prefix}00000000420"
    glossary = Glossary(terms)
    assert [m.span() for m in glossary.finditer(text)] == old_spans(terms, text, SMALL_W)
    assert find_spans(text, glossary)[0] == (0, 200)


def test_deep_tries_compile() -> None:
    # 200 nested optional groups (every prefix of a 200-character term is a term).
    terms = ["a" * n for n in range(1, 201)]
    glossary = Glossary(terms)
    text = "a" * 150 + " " + "a" * 201
    assert [m.span() for m in glossary.finditer(text)] == old_spans(terms, text, SMALL_W)


def test_characters_re_matches_to_each_other_share_a_case_form() -> None:
    # The trie finds a character's case class among the siblings sharing one of its
    # forms; a pair re matches without a shared form would split a class in two.
    cased = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if _cased(c))
    for c in cased:
        for m in re.finditer(re.escape(c), cased, re.IGNORECASE):
            assert set(_forms(c)) & set(_forms(m.group())), (c, m.group())


def test_many_first_letters_are_grouped_behind_classes() -> None:
    # 1,000 terms starting with ~960 different letters: re enters every IGNORECASE
    # alternative it is offered (100 ms on 4,096 spaces before they were grouped).
    letters = [
        c for c in map(chr, range(0x41, 0x3000)) if c.isalpha() and c.upper() != c == c.lower()
    ]
    terms = [f"{c}xy{i}" for i, c in enumerate(letters[:1000])]
    glossary = Glossary(terms)
    assert glossary._pattern is not None
    assert max_alternatives(glossary._pattern.pattern) <= 16
    text = " ".join(f"{c}xy{i}" for i, c in enumerate(letters[:60:3]))
    assert [m.span() for m in glossary.finditer(text)] == old_spans(terms, text, SMALL_W)
