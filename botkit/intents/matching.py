"""Recognizing intents in short messages: whole-word keywords, then similarity to
example phrasings.

Both compare ``search_terms``: case, accents and punctuation do not matter ("Café" and
"cafe", "E-MAIL" and "e mail" are the same), any script works, and in scripts written
without spaces (Chinese, Japanese, Thai...) text is compared as overlapping character
pairs, so a keyword there needs at least two characters. A keyword matches a run of
whole terms of the message: "पता" ("address") is not found in "लापता" ("missing"),
whose vowel sign is part of the word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from botkit.intents._similarity import SimilarityIndex
from botkit.language.words import search_terms

__all__ = ["IntentMatch", "IntentMatcher", "IntentPattern", "fold"]

# A translation of a message is matched up to this many times the message's limit:
# Chinese or Japanese run 3-4 times longer in English. Longer is not a translation of a
# short message, and would only cost time.
_MAX_TRANSLATION_GROWTH = 4


def fold(text: str) -> str:
    """``text`` as keywords are compared: its search terms, space-separated."""
    return " ".join(search_terms(text))


@dataclass(frozen=True, slots=True)
class IntentPattern:
    """What recognizes one intent.

    Attributes:
        name: the intent's name.
        examples: customer phrasings, matched by similarity.
        keywords: phrases that match outright as whole words.
        min_similarity: this intent's threshold; None for the matcher's.
    """

    name: str
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    min_similarity: float | None = None


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent a message expresses.

    Attributes:
        index: the intent's position among the patterns.
        name: its name.
        score: similarity to the example (0-1); 1.0 for a keyword.
        via: "keyword" or "example".
        matched: the keyword (folded) or the example that matched.
    """

    index: int
    name: str
    score: float
    via: Literal["keyword", "example"]
    matched: str


class IntentMatcher:
    """Finds the intent of a message among ``patterns`` (all work is done here, once).

    Args:
        patterns: the intents, in priority order (earlier wins a tie, of keywords or
            of similarity).
        min_similarity: the threshold of intents without their own.
        max_chars: longer messages are never matched (a long message is a question,
            not an intent, even when it mentions one).

    Raises:
        ValueError: two intents share a keyword.
    """

    def __init__(
        self, patterns: Sequence[IntentPattern], *, min_similarity: float, max_chars: int
    ) -> None:
        self.patterns = tuple(patterns)
        self.max_chars = max_chars
        self._thresholds = [
            min_similarity if p.min_similarity is None else p.min_similarity for p in self.patterns
        ]
        # The keywords' terms as a trie: a message is walked from each of its terms
        # only as far as some keyword goes on (a dict lookup per step).
        self._keywords = _Node()
        for index, pattern in enumerate(self.patterns):
            for keyword in pattern.keywords:
                node = self._keywords
                for term in search_terms(keyword):
                    node = node.children.setdefault(term, _Node())
                if node is self._keywords:
                    continue  # nothing to match (the config refuses it)
                if node.intent is not None and node.intent != index:
                    raise ValueError(
                        f"intents {self.patterns[node.intent].name!r} and {pattern.name!r} "
                        f"share the keyword {fold(keyword)!r}"
                    )
                node.intent = index
        self._examples: list[tuple[int, str]] = [
            (index, example)
            for index, pattern in enumerate(self.patterns)
            for example in pattern.examples
        ]
        self._index = SimilarityIndex(
            [search_terms(example) for _, example in self._examples],
            [index for index, _ in self._examples],
            [self._thresholds[index] for index, _ in self._examples],
        )

    @property
    def postings(self) -> int:
        """The size of the examples' index: (example, feature) pairs. A match reads
        some of them, the commonest words' most."""
        return self._index.postings

    def match(self, *texts: str) -> IntentMatch | None:
        """The intent of the message written as ``texts``: the customer's text first,
        then other versions of it (its working-language translation). A keyword in any
        of them (the earliest intent whose keyword is there), else the example most
        similar to any of them that reaches its intent's threshold (ties: the earlier
        intent, then the earlier example). None when nothing matches, and always when
        the customer's text is over ``max_chars``: whether a message is short enough is
        decided on what the customer wrote, not on a (shorter) translation of it. The
        other texts are matched up to four times that long (``_MAX_TRANSLATION_GROWTH``)."""
        if not texts or len(texts[0]) > self.max_chars:
            return None
        longest = self.max_chars * _MAX_TRANSLATION_GROWTH
        # Texts that fold to the same terms (a translation that changed nothing) count once.
        term_lists = list(
            dict.fromkeys(
                tuple(words)
                for text in texts
                if len(text) <= longest and (words := search_terms(text))
            )
        )
        found = self._keyword(term_lists)
        if found is not None:
            index, phrase = found
            return IntentMatch(index, self.patterns[index].name, 1.0, "keyword", phrase)
        best: tuple[float, int] | None = None  # (score, example)
        for terms in term_lists:
            found_example = self._index.best(terms, 0.0 if best is None else best[0])
            if found_example is not None and (
                best is None
                or found_example[0] > best[0]
                or (found_example[0] == best[0] and found_example[1] < best[1])
            ):
                best = found_example
        if best is None:
            return None
        score, example = best
        index, text = self._examples[example]
        return IntentMatch(index, self.patterns[index].name, min(score, 1.0), "example", text)

    def _keyword(self, term_lists: list[tuple[str, ...]]) -> tuple[int, str] | None:
        """The earliest intent with a keyword in one of ``term_lists``, and the keyword
        (folded). A keyword is a run of whole terms; every run that is one is found,
        whatever the keywords' order or overlap in the message."""
        best: tuple[int, str] | None = None
        root = self._keywords
        for terms in term_lists:
            for start in range(len(terms)):
                node = root
                for end in range(start, len(terms)):
                    following = node.children.get(terms[end])
                    if following is None:
                        break
                    node = following
                    if node.intent is not None and (best is None or node.intent < best[0]):
                        best = (node.intent, " ".join(terms[start : end + 1]))
        return best


class _Node:
    """A node of the keyword trie: the terms that may follow, and the intent whose
    keyword ends here."""

    __slots__ = ("children", "intent")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.intent: int | None = None
