"""Okapi BM25 over passages: which passages answer a question best.

BM25 is what search engines (Lucene, Elasticsearch) rank by default. It needs no model,
works for any language the analyzer splits, ranks in a millisecond for tens of
thousands of passages, and its decisions can be explained to an operator (which terms
matched). Defaults k1 = 1.2, b = 0.75 are Lucene's.

Scores are reported as *relevance* in [0, 1): the BM25 score divided by the most the
question could score (every term saturated in a passage of average length). A
threshold on that means the same thing for a two-word and a twenty-word question. A
term of the question that no passage has counts at the rarest term's weight: a question
mostly about something the documents never mention ("do you sell shoes?") must not look
relevant because its "sell" matched somewhere. *Context* terms (the customer's own
words beside their translation, their previous message) count only when some passage
has them: they may find a passage, but a word in another language, or an earlier
unrelated remark, never makes the question itself look less answered.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from botkit.knowledge.analysis import Analyzer
from botkit.knowledge.documents import Passage

__all__ = ["Hit", "PassageIndex", "Query"]

K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage, its relevance and the terms it matched."""

    passage: Passage
    relevance: float
    matched: tuple[str, ...]


@dataclass
class Query:
    """Terms to search, with weights: the question's, and context (see the module
    docstring). Build it with ``PassageIndex.query``."""

    terms: dict[str, float]
    context: dict[str, float]


class PassageIndex:
    """An inverted index of ``passages`` (immutable once built)."""

    def __init__(self, passages: Sequence[Passage], analyzer: Analyzer) -> None:
        self.passages = tuple(passages)
        self.analyzer = analyzer
        counts_by_passage: list[Counter[str]] = []
        lengths: list[int] = []
        for passage in self.passages:
            counts = Counter(analyzer.terms(_indexed_text(passage)))
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

    def query(
        self,
        question: str,
        *,
        leave_out: Collection[str] = (),
        context: Sequence[tuple[str, float, Collection[str]]] = (),
    ) -> Query:
        """The terms of ``question`` (weight 1) and of the ``context`` texts
        (``(text, weight, words to leave out)``), each term at its highest weight."""
        terms = dict.fromkeys(self.analyzer.terms(question, leave_out=leave_out), 1.0)
        extra: dict[str, float] = {}
        for text, weight, words in context:
            for term in self.analyzer.terms(text, leave_out=words):
                if term in self._postings and weight > max(terms.get(term, 0), extra.get(term, 0)):
                    extra[term] = weight
        return Query(terms, {t: w for t, w in extra.items() if t not in terms})

    def cost(self, query: Query) -> int:
        """How many postings a search of ``query`` reads (its time is about linear in it)."""
        return sum(len(self._postings[t][0]) for t in (*query.terms, *query.context)
                   if t in self._postings)  # fmt: skip

    def search(self, query: Query, *, limit: int, min_relevance: float) -> list[Hit]:
        """The best ``limit`` passages for ``query``, best first, each at least
        ``min_relevance``; ties keep the documents' order."""
        unknown = self._unknown_idf
        # Context terms are all known (see query()); the question's may not be.
        weights = {**query.context, **query.terms}
        best_possible = sum(w * self._idf.get(t, unknown) * (K1 + 1) for t, w in weights.items())
        known = {t: w for t, w in weights.items() if w > 0 and t in self._postings}
        if not known or limit <= 0:
            return []
        scores: dict[int, float] = {}
        get = scores.get
        for term, weight in known.items():
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
            have = set(self.analyzer.terms(_indexed_text(passage)))
            hits.append(Hit(passage, relevance, tuple(t for t in known if t in have)))
        return hits


def _indexed_text(passage: Passage) -> str:
    # The title is part of what a passage is about ("Returns" under "Shipping").
    return f"{passage.title}\n{passage.text}"


def as_query(terms: Mapping[str, float]) -> Query:
    """A query of already analyzed terms (tests, benchmarks)."""
    return Query(dict(terms), {})
