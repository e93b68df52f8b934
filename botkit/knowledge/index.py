"""Okapi BM25 over passages: which passages answer a question best.

BM25 is what search engines (Lucene, Elasticsearch) rank by default. It needs no model,
works for any language the analyzer splits, ranks in a millisecond for tens of
thousands of passages, and its decisions can be explained to an operator (which terms
matched). Defaults k1 = 1.2, b = 0.75 are Lucene's.

Scores are reported as *relevance* in [0, 1]: the BM25 score divided by the most the
question could score (every word saturated in a passage of average length; a word counts
once, whichever of its terms a passage has). A
threshold on that means the same thing for a two-word and a twenty-word question. A
term of the question that no passage has counts at the rarest term's weight: a question
mostly about something the documents never mention ("do you sell shoes?") must not look
relevant because its "sell" matched somewhere. *Context* words (the customer's own
words beside their translation) count only when some passage has them, and only for a
passage's score, never for what the question could score: they may find a passage, but
a word in another language never makes the question itself look less answered.

The customer's *previous message* (``history``) is scored on its own and fills only
what the current question leaves unanswered: a passage's relevance is
``q + weight * h * (1 - best)``, where ``q`` is its relevance to the question, ``h``
its relevance to the previous message's words that some passage has (the base's
subjects in it), and ``best`` the highest ``q`` of any passage. A question that finds
a clearly relevant passage keeps it first (after a topic change, the old subject's
page can gain at most ``weight * (1 - best)``); a follow-up that finds nothing by
itself ("how long?") gets the previous subject's passages, at up to ``weight``.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from botkit.knowledge.analysis import Analyzer
from botkit.knowledge.documents import Passage

__all__ = ["Hit", "PassageIndex", "Query", "Word"]

K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage and its relevance."""

    passage: Passage
    relevance: float


# One word of a question: its terms (an accented word may have two, see analysis.py).
Word = tuple[str, ...]


@dataclass
class Query:
    """What to search: the question's words and context words (see the module
    docstring), each with its weight. Build it with ``PassageIndex.query``."""

    words: dict[Word, float]
    context: dict[Word, float]
    history: dict[Word, float] = field(default_factory=dict)
    history_weight: float = 0.0


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
        history: tuple[str, float, Collection[str]] | None = None,
    ) -> Query:
        """The words of ``question`` (weight 1) and of the ``context`` texts
        (``(text, weight, words to leave out)``), each at its highest weight; context
        words only when some passage has them. ``history`` (``(previous message,
        weight, words to leave out)``) is searched beside the question (module
        docstring)."""
        words = dict.fromkeys(self.analyzer.words(question, leave_out=leave_out), 1.0)
        extra: dict[Word, float] = {}
        for text, weight, left_out in context:
            for word in self.analyzer.words(text, leave_out=left_out):
                if word not in words and weight > extra.get(word, 0) and self._known(word):
                    extra[word] = weight
        if history is None or history[1] <= 0:
            return Query(words, extra)
        text, weight, left_out = history
        # Only words some passage has: a remark the base knows nothing of ("my sister
        # recommended you") has no subject to keep, and must not dilute one that it has.
        words_before = self.analyzer.words(text, leave_out=left_out)
        previous = dict.fromkeys((word for word in words_before if self._known(word)), 1.0)
        return Query(words, extra, previous, weight)

    def _known(self, word: Word) -> list[str]:
        return [term for term in word if term in self._postings]

    def cost(self, query: Query) -> int:
        """How many postings a search of ``query`` reads (its time is about linear in it)."""
        return sum(len(self._postings[t][0]) for word in _all_words(query)
                   for t in self._known(word))  # fmt: skip

    def search(self, query: Query, *, limit: int, min_relevance: float) -> list[Hit]:
        """The best ``limit`` passages for ``query``, best first, each at least
        ``min_relevance``; ties keep the documents' order."""
        if limit <= 0:
            return []
        # Context words add to a passage's score but not to what the question could
        # score (module docstring).
        possible = self._possible(query.words)
        if possible <= 0:  # nothing but function words: the context alone decides
            possible = self._possible(query.context)
        relevances = self._relevances({**query.words, **query.context}, possible)
        if query.history and query.history_weight > 0:
            # The previous message fills only what the question leaves unanswered.
            best = max(relevances.values(), default=0.0)
            scale = query.history_weight * (1.0 - best)
            previous = self._relevances(query.history, self._possible(query.history))
            for number, relevance in previous.items():
                relevances[number] = relevances.get(number, 0.0) + scale * relevance
        # Stable like sorted(): equal relevances keep the order passages were first
        # scored in.
        ranked = heapq.nlargest(limit, relevances.items(), key=itemgetter(1))
        hits = []
        for number, relevance in ranked:
            if relevance < min_relevance or relevance <= 0:
                break
            hits.append(Hit(self.passages[number], relevance))
        return hits

    def _possible(self, words: dict[Word, float]) -> float:
        """The most ``words`` could score: each word at its rarest known term's idf,
        or, known to no passage, at the rarest possible."""
        return sum(w * self._best_idf(word) * (K1 + 1) for word, w in words.items())

    def _relevances(self, words: dict[Word, float], possible: float) -> dict[int, float]:
        """Each passage having some of ``words``: its score over ``possible``, at most 1."""
        if possible <= 0:
            return {}
        scores: dict[int, float] = {}
        for word, weight in words.items():
            known = self._known(word)
            if weight > 0 and known:
                self._add(scores, known, weight * (K1 + 1))
        return {number: min(score / possible, 1.0) for number, score in scores.items()}

    def matched_terms(self, query: Query, passage: Passage) -> list[str]:
        """The terms of ``query`` that ``passage`` has (for operators: why it was found;
        kept off the per-message search)."""
        have = set(self.analyzer.terms(_indexed_text(passage)))
        words = dict.fromkeys(_all_words(query))
        return [
            next(t for t in word if t in have) for word in words if any(t in have for t in word)
        ]

    def _best_idf(self, word: Word) -> float:
        known = self._known(word)
        return max(self._idf[t] for t in known) if known else self._unknown_idf

    def _add(self, scores: dict[int, float], terms: list[str], scale: float) -> None:
        """Add one word's BM25 share to each passage having it (its best term's)."""
        get = scores.get
        if len(terms) == 1:  # the usual case: one term, straight in
            idf = self._idf[terms[0]] * scale
            numbers, factors = self._postings[terms[0]]
            for number, factor in zip(numbers, factors, strict=True):
                scores[number] = get(number, 0.0) + idf * factor
            return
        best: dict[int, float] = {}
        for term in terms:
            idf = self._idf[term] * scale
            numbers, factors = self._postings[term]
            for number, factor in zip(numbers, factors, strict=True):
                if idf * factor > best.get(number, 0.0):
                    best[number] = idf * factor
        for number, gain in best.items():
            scores[number] = get(number, 0.0) + gain


def _all_words(query: Query) -> list[Word]:
    return [*query.words, *query.context, *query.history]


def _indexed_text(passage: Passage) -> str:
    # The title is part of what a passage is about ("Returns" under "Shipping").
    return f"{passage.title}\n{passage.text}"
