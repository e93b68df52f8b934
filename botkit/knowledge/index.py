"""Okapi BM25 over passages: which passages answer a question best.

BM25 is what search engines (Lucene, Elasticsearch) rank by default. It needs no model,
works for any language ``search_terms`` splits, ranks in a millisecond for tens of
thousands of passages, and its decisions can be explained to an operator (which words
matched). Defaults k1 = 1.2, b = 0.75 are Lucene's.

Scores are reported as *relevance* in [0, 1): the BM25 score divided by the most the
query could score (every query term saturated in a passage of average length). A
threshold on that means the same thing for a two-word and a twenty-word question.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from botkit.knowledge.documents import Passage
from botkit.language.words import search_terms

__all__ = ["Hit", "PassageIndex", "query_terms"]

K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage and its relevance (see the module docstring)."""

    passage: Passage
    relevance: float
    matched: tuple[str, ...]


class PassageIndex:
    """An inverted index of ``passages`` (immutable once built)."""

    def __init__(self, passages: Sequence[Passage], *, stem: Callable[[str], str] = str) -> None:
        self.passages = tuple(passages)
        self._stem = stem
        counts_by_passage: list[Counter[str]] = []
        lengths: list[int] = []
        for passage in self.passages:
            # The title is part of what a passage is about ("Returns" under "Shipping").
            counts = Counter(map(stem, search_terms(f"{passage.title}\n{passage.text}")))
            counts_by_passage.append(counts)
            lengths.append(sum(counts.values()))
        count = len(self.passages)
        average = max(sum(lengths) / count, 1.0) if count else 1.0
        # term -> (passage numbers, each one's BM25 term factor tf / (tf + K1 * (1 - B +
        # B * length / average))): everything about a passage that does not depend on
        # the question, computed once, so a search only multiplies and adds.
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for number, (counts, length) in enumerate(zip(counts_by_passage, lengths, strict=True)):
            norm = K1 * (1 - B + B * length / average)
            for term, frequency in counts.items():
                numbers, factors = postings.setdefault(term, ([], []))
                numbers.append(number)
                factors.append(frequency / (frequency + norm))
        self._postings = postings
        # Lucene's idf: always positive, so a word in most passages still counts a little.
        self._idf = {t: math.log(1 + (count - len(p[0]) + 0.5) / (len(p[0]) + 0.5))
                     for t, p in postings.items()}  # fmt: skip
        self._unknown_idf = math.log(1 + (count + 0.5) / 0.5)

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def vocabulary(self) -> int:
        """How many distinct terms the passages have."""
        return len(self._postings)

    def search(self, query: Mapping[str, float], *, limit: int, min_relevance: float) -> list[Hit]:
        """The best ``limit`` passages for ``query`` (term -> weight, see
        ``query_terms``), best first, each at least ``min_relevance``; ties keep the
        documents' order."""
        stemmed: dict[str, float] = {}
        for term, weight in query.items():
            stem = self._stem(term)
            stemmed[stem] = max(weight, stemmed.get(stem, 0.0))
        query = stemmed
        weighted = {t: w for t, w in query.items() if w > 0 and t in self._postings}
        # A word no passage has counts at the rarest word's weight: a question mostly
        # about something the documents never mention ("do you sell shoes?") must not
        # look relevant because its "do" and "you" appear somewhere.
        unknown = self._unknown_idf
        best_possible = sum(w * self._idf.get(t, unknown) * (K1 + 1) for t, w in query.items()
                            if w > 0)  # fmt: skip
        if not weighted or limit <= 0:
            return []
        scores: dict[int, float] = {}
        get = scores.get
        for term, weight in weighted.items():
            scale = weight * self._idf[term] * (K1 + 1)
            numbers, factors = self._postings[term]
            for number, factor in zip(numbers, factors, strict=True):
                scores[number] = get(number, 0.0) + scale * factor
        # Stable like sorted(): equal scores keep the order passages were first scored in.
        ranked = heapq.nlargest(limit, scores.items(), key=itemgetter(1))
        hits = []
        for number, score in ranked:
            relevance = score / best_possible
            if relevance < min_relevance:
                break
            passage = self.passages[number]
            hits.append(Hit(passage, relevance, self._matched(weighted, passage)))
        return hits

    def _matched(self, query: Iterable[str], passage: Passage) -> tuple[str, ...]:
        terms = set(map(self._stem, search_terms(f"{passage.title}\n{passage.text}")))
        return tuple(t for t in query if t in terms)


def query_terms(*texts: tuple[str, float, Collection[str]]) -> dict[str, float]:
    """Query weights from ``(text, weight, words to leave out)``; a term keeps its
    highest weight."""
    query: dict[str, float] = {}
    for text, weight, leave_out in texts:
        for term in search_terms(text):
            if term not in leave_out and weight > query.get(term, 0.0):
                query[term] = weight
    return query
