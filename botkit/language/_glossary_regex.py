"""One regular expression for all glossary terms, shaped like a trie of their prefixes.

The plain alternation ``term1|term2|...`` (longest first) makes Python's backtracking
engine try every term at every position of the text: ~0.5 s for 1,000 terms on a
2,000-character message, on the event loop (``benchmarks/glossary.py``). Here terms
that share a prefix share its characters, and siblings never match the same character,
so at each position the engine follows one path down the trie and backs up only to the
longest term that ended on the way: cost ~ characters x (term length + siblings at a
node), not characters x terms.

The matches are exactly those of the alternation (tested against it on random
glossaries, ``tests/botkit/language/test_language_glossary_trie.py``):

* case-insensitive as ``re.IGNORECASE``: sibling characters that match each other under
  it ("a"/"A", "k"/Kelvin sign, "ß"/"ẞ", "i"/"İ") share one node, asked of ``re`` itself
  rather than of ``str.lower``, which differs from the engine's simple case folding;
* longest term first: at a node, the longer terms (children) are tried before the term
  that ends there;
* a term starting (ending) with a letter or digit needs a word edge before (after) it.

Where a glossary would break one of these (two characters one of which matches the
other but not back, a term starting or ending with U+0345, a trie too deep for ``re``
to compile), the plain alternation is used: slower, never different.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["alternation", "glossary_pattern", "trie_pattern"]

# Nested groups per trie level: ``re``'s parser recurses per group (~4 frames each), so a
# chain of 200 branching points compiles well under the interpreter's recursion limit.
_MAX_DEPTH = 220
_FAN = 16  # alternatives per group before they are grouped behind classes (_fan_in)


# Whether a term needs a word edge depends on its first and last characters
# (``str.isalnum``); the pattern asks it of the text's characters, which match the
# term's under IGNORECASE. They agree but for one case class: U+0345 (a combining mark)
# matches iota (a letter). A text's U+0345 counts as a letter (``_ALNUM``), as the
# iota of a term; a term ending with U+0345 itself is left to the alternation.
_YPOGEGRAMMENI = "\u0345"
_ALNUM = f"(?-i:[^\\W_]|{_YPOGEGRAMMENI})"  # str.isalnum() is \w without "_"


class _NoTrie(Exception):
    """The glossary cannot be matched exactly by a trie (module docstring)."""


@dataclass(slots=True)
class _Node:
    # Siblings by every spelling seen, each pointing at the node of its case class.
    by_char: dict[str, _Node] = field(default_factory=dict)
    # Siblings by the characters of their case forms (``_forms``): where to look for
    # the class of a new spelling without asking ``re`` about every sibling.
    by_form: dict[str, list[tuple[str, _Node]]] = field(default_factory=dict)
    # (character written in the pattern, child) in insertion order, one per case class.
    children: list[tuple[str, _Node]] = field(default_factory=list)
    ends: bool = False  # a term ends here

    def child(self, c: str) -> _Node:
        node = self.by_char.get(c)
        if node is not None:
            return node
        forms = _forms(c) if _cased(c) else ""
        seen: set[int] = set()
        for f in forms:
            for rep, sibling in self.by_form.get(f, ()):
                if id(sibling) in seen:
                    continue
                seen.add(id(sibling))
                forward, back = _matches(rep, c), _matches(c, rep)
                if forward != back:
                    raise _NoTrie(f"{rep!r} and {c!r} match one way only")
                if forward:
                    self.by_char[c] = sibling
                    return sibling
        node = _Node()
        self.by_char[c] = node
        self.children.append((c, node))
        for f in forms:
            self.by_form.setdefault(f, []).append((c, node))
        return node


def _cased(c: str) -> bool:
    # Wider than re's own test (simple case mappings): a character outside it is matched
    # by itself only, so it can share no node with another.
    return c.lower() != c or c.upper() != c


def _forms(c: str) -> str:
    """The characters of ``c``'s case forms. Two characters ``re`` matches to each other
    under IGNORECASE share one (Kelvin sign and "k" "k", long s and "s" "S", "İ" and
    "i" "i"...): checked for all of Unicode in the tests."""
    lower, upper = c.lower(), c.upper()
    return "".join(dict.fromkeys(c + lower + upper + c.casefold() + lower.upper() + upper.lower()))


@functools.lru_cache(maxsize=65536)
def _matches(pattern_char: str, text_char: str) -> bool:
    return re.fullmatch(re.escape(pattern_char), text_char, re.IGNORECASE) is not None


def _build(terms: Sequence[str]) -> _Node:
    root = _Node()
    for term in terms:
        if term[0] == _YPOGEGRAMMENI or term[-1] == _YPOGEGRAMMENI:
            raise _NoTrie("a term starts or ends with U+0345")
        node = root
        for c in term:
            node = node.child(c)
        node.ends = True
    return root


def _alternatives(node: _Node, depth: int) -> list[str]:
    if depth > _MAX_DEPTH:
        raise _NoTrie("too deep")
    found = []
    for rep, child in node.children:
        # A run of single-child nodes where no term ends is one literal.
        text = re.escape(rep)
        first = rep
        while not child.ends and len(child.children) == 1:
            rep, child = child.children[0]
            text += re.escape(rep)
        found.append((first, text + _rest(child, depth + 1)))
    return _fan_in(found)


def _fan_in(branches: list[tuple[str, str]]) -> list[str]:
    """``branches`` (first character, pattern) behind lookahead classes of their first
    characters, ``_FAN`` at a time, so a position tries ~_FAN x levels of them, not all.

    ``re`` skips an alternative on its first character only when that is matched
    case-sensitively; under IGNORECASE it enters each one: a glossary of 1,000 terms
    starting with 960 different letters cost 100 ms on 4,096 spaces, 1 ms behind these.
    A class matches every character its members match under IGNORECASE (and maybe
    more: then the branches behind it fail, as they would have).
    """
    while len(branches) > _FAN:
        branches = [
            (
                "".join(first for first, _ in group),
                f"(?={_class(''.join(first for first, _ in group))})"
                f"(?:{'|'.join(pattern for _, pattern in group)})",
            )
            for group in (branches[i : i + _FAN] for i in range(0, len(branches), _FAN))
        ]
    return [pattern for _, pattern in branches]


def _class(chars: str) -> str:
    return "[" + "".join(map(re.escape, dict.fromkeys(chars))) + "]"


def _rest(node: _Node, depth: int) -> str:
    """What may follow ``node``: a longer term first, then the end of this one."""
    options = _alternatives(node, depth)
    if not options:
        return ""
    if node.ends:
        options.append("")
    if len(options) == 1:
        return options[0]
    return "(?:" + "|".join(options) + ")"


def glossary_pattern(terms: Sequence[str], word: str) -> re.Pattern[str]:
    """The trie of ``terms`` where it can be one, else their alternation: the same
    matches either way (see ``trie_pattern``)."""
    try:
        return trie_pattern(terms, word)
    except ValueError:
        return alternation(terms, word)


def trie_pattern(terms: Sequence[str], word: str) -> re.Pattern[str]:
    """The terms (folded, unique, none empty) as one IGNORECASE pattern; ``word`` is a
    pattern for one character that continues a word.

    Raises:
        ValueError: the glossary cannot be a trie (module docstring): use ``alternation``.
    """
    word = _case_sensitive(word)
    try:
        root = _build(terms)
        trie = "|".join(_alternatives(root, 0))
        # One class look-up rejects the positions where no term can start.
        firsts = _class("".join(rep for rep, _ in root.children))
        # The edges once, around the whole trie, not once per term: each copy of
        # ``word`` costs ``re`` ~1.5 ms to compile (its CJK ranges), 1.5 s for 1,000
        # terms. The engine backs into the trie when the end edge fails, so a shorter
        # term is tried just as with one lookahead per term.
        pattern = f"(?={firsts})(?:(?<!{word})|(?!{_ALNUM}))(?:{trie})(?:(?<!{_ALNUM})|(?!{word}))"
        return re.compile(pattern, re.IGNORECASE)
    except (_NoTrie, RecursionError) as exc:
        raise ValueError(f"glossary is no trie: {exc}") from exc


def alternation(terms: Sequence[str], word: str) -> re.Pattern[str]:
    """The terms as ``term1|term2|...``, longest first: the reference semantics."""
    word = _case_sensitive(word)

    def edge(c: str, lookahead: bool) -> str:
        if not c.isalnum():
            return ""  # "C++": no word boundary after a symbol
        return f"(?!{word})" if lookahead else f"(?<!{word})"

    parts = [
        edge(t[0], False) + re.escape(t) + edge(t[-1], True)
        for t in sorted(terms, key=len, reverse=True)
    ]
    return re.compile("|".join(parts), re.IGNORECASE)


def _case_sensitive(word: str) -> str:
    # A word character is one of any case, so IGNORECASE changes nothing in what
    # ``word`` matches, but ``re`` would case-fold every character of its classes'
    # ranges for each copy: 13 s to compile the alternation of 1,000 terms, 5 s without.
    return f"(?-i:{word})"
