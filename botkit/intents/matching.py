"""Recognizing intents in short messages: whole-word keywords, then similarity to
example phrasings.

Both compare ``search_terms``: case, accents and punctuation do not matter ("Café" and
"cafe", "E-MAIL" and "e mail" are the same), any script works, and in scripts written
without spaces (Chinese, Japanese, Thai...) text is compared as overlapping character
pairs, so a keyword there needs at least two characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from botkit.handoff.matching import KeywordMatcher
from botkit.intents._similarity import SimilarityIndex
from botkit.language.words import search_terms

__all__ = ["IntentMatch", "IntentMatcher", "IntentPattern", "fold"]

# NFKC can make a text up to 18 times longer (U+FDFA); a message is measured before it
# is folded, so the keyword matcher's own limit only has to allow for that.
_MAX_EXPANSION = 18


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
        patterns: the intents, in priority order (earlier wins a tie).
        min_similarity: the threshold of intents without their own.
        max_chars: longer texts are never matched (a long message is a question, not
            an intent, even when it mentions one).

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
        self._keyword_intent: dict[str, int] = {}
        for index, pattern in enumerate(self.patterns):
            for keyword in pattern.keywords:
                phrase = fold(keyword)
                other = self._keyword_intent.setdefault(phrase, index)
                if other != index:
                    raise ValueError(
                        f"intents {self.patterns[other].name!r} and {pattern.name!r} "
                        f"share the keyword {phrase!r}"
                    )
        self._keywords = KeywordMatcher(self._keyword_intent, max_chars=max_chars * _MAX_EXPANSION)
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

    def match(self, *texts: str) -> IntentMatch | None:
        """The intent of the message written as ``texts`` (e.g. the customer's text and
        its working-language translation): a keyword in any of them (in order), else the
        example most similar to any of them that reaches its intent's threshold (ties:
        the earlier intent, then the earlier example). None when nothing matches."""
        # Texts that fold to the same terms (a translation that changed nothing) count once.
        term_lists = list(
            dict.fromkeys(
                tuple(words)
                for text in texts
                if len(text) <= self.max_chars and (words := search_terms(text))
            )
        )
        for terms in term_lists:
            phrase = self._keywords.match(" ".join(terms))
            if phrase is not None:
                index = self._keyword_intent[phrase]
                return IntentMatch(index, self.patterns[index].name, 1.0, "keyword", phrase)
        best: tuple[float, int] | None = None  # (score, example)
        for terms in term_lists:
            found = self._index.best(terms, 0.0 if best is None else best[0])
            if found is not None and (
                best is None or found[0] > best[0] or (found[0] == best[0] and found[1] < best[1])
            ):
                best = found
        if best is None:
            return None
        score, example = best
        index, text = self._examples[example]
        return IntentMatch(index, self.patterns[index].name, min(score, 1.0), "example", text)
