"""How alike a short message is to example phrasings: a cosine over TF-IDF weighted
words and character trigrams, searched through an inverted index.

Why this measure: intents are matched on short messages (a few words), where what
matters is which content words two texts share. TF-IDF cosine over ``search_terms``
gives that, in any script, and discounts words every intent uses ("my", "order" in a
shop's intents). Words alone miss what customers type: "refunds" for "refund",
"cancelled" for "cancel", "ordr" for "order". Character trigrams of the words of 3+
letters (padded, so word starts and ends count) catch those: one typo leaves most of a
word's trigrams intact. Each kind is normalized on its own, then they are mixed into one
unit vector, words 30% and trigrams 70% of its squared norm, so an exact repeat scores
1.0 and a text without trigrams (Chinese or Japanese, whose terms are already
character pairs) compares on words alone. On the labelled set of
``benchmarks/intents.py`` at the default threshold (0.5) that finds 42 of 43 intents
with 2 of 40 false matches; words alone find 36 with 3. Document frequency counts
intents, not examples: an intent with many examples that all say "refund" does not make
"refund" common.

A message is scored against every example through an inverted index (feature ->
examples), pruned exactly (MaxScore): the query's features are sorted by the most each
can add to any example's score; the smallest ones, which together cannot reach the
threshold, only refine the candidates the others found, most promising first, and each
candidate only while it can still win. Pure Python: 0.2 ms typical, under 1 ms at p99,
for 1,000 intents of 10 examples (``benchmarks/intents.py``).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence

__all__ = ["SimilarityIndex"]

# Share of word features in the squared norm of a vector that has both kinds.
_WORD_SHARE = 0.3
_GRAM = 3
# Words shorter than this get no trigrams: their trigrams say no more than the word.
_MIN_GRAM_WORD = 3
_GRAM_KEY = "\x00"  # trigram keys start with it; terms never contain it
# The lazy features may add at most this share of the threshold. All the threshold
# would be exact too, and touches the fewest postings, but leaves every example that
# shares one word with the message to be refined. Measured (benchmarks/intents.py,
# 1,000 intents x 10 examples; 1.0 -> 0.6): p50 65 -> 95 us, p99 1.04 -> 0.66 ms, the
# worst message (200 characters of the commonest words) 13.8 -> 4.6 ms.
_LAZY_SHARE = 0.6
_SLACK = 1e-9  # bounds are compared with this margin so rounding never drops a match


def _raw(terms: Sequence[str]) -> tuple[Counter[str], Counter[str]]:
    """Counts of the words and of the trigram features of ``terms``."""
    words = Counter(terms)
    grams: Counter[str] = Counter()
    for term in terms:
        if len(term) >= _MIN_GRAM_WORD:
            padded = f" {term} "
            grams.update(_GRAM_KEY + padded[i : i + _GRAM] for i in range(len(padded) - 2))
    return words, grams


def _block(counts: Counter[str], idf: dict[str, float], unknown: float) -> dict[str, float]:
    """Sublinear TF times IDF, scaled to unit norm (empty stays empty)."""
    block = {f: (1.0 + math.log(n)) * idf.get(f, unknown) for f, n in counts.items()}
    norm = math.sqrt(sum(w * w for w in block.values()))
    return {f: w / norm for f, w in block.items()} if norm else {}


class SimilarityIndex:
    """Examples' vectors and their inverted index (see the module docstring).

    Args:
        examples: each example's terms (``search_terms``).
        groups: each example's intent (document frequency counts intents).
    """

    def __init__(
        self,
        examples: Sequence[Sequence[str]],
        groups: Sequence[int],
        thresholds: Sequence[float],
    ) -> None:
        self._thresholds = list(thresholds)
        self._floor = min(self._thresholds, default=1.0)
        raw = [_raw(terms) for terms in examples]
        features_of: dict[int, set[str]] = {}
        for (words, grams), group in zip(raw, groups, strict=True):
            features_of.setdefault(group, set()).update(words, grams)
        df: Counter[str] = Counter()
        for features in features_of.values():
            df.update(features)
        n = len(features_of)
        # Smoothed IDF (never 0, so a word every intent shares still counts a little).
        # A message's word no example has counts as one of a single intent ("would",
        # "like" in "I would like a refund" are not rarer than "refund"): on the
        # benchmark's labelled set that matches 42 of 43 rather than 39 at 0.5, with the
        # same 2 of 40 false matches.
        self._idf = {f: math.log((1 + n) / (1 + d)) + 1.0 for f, d in df.items()}
        self._unknown = math.log((1 + n) / 2) + 1.0
        # One string object per feature, shared by all vectors (a third of the memory).
        shared = {f: f for f in df}
        self.vectors = [
            {shared[f]: w for f, w in self._vector(words, grams).items()} for words, grams in raw
        ]
        ids: dict[str, array[int]] = {}
        weights: dict[str, array[float]] = {}
        for example, vector in enumerate(self.vectors):
            for feature, weight in vector.items():
                ids.setdefault(feature, array("i")).append(example)
                weights.setdefault(feature, array("d")).append(weight)
        self._postings = {f: (ids[f], weights[f]) for f in ids}
        self._max = {f: max(w) for f, w in weights.items()}

    def _vector(self, words: Counter[str], grams: Counter[str]) -> dict[str, float]:
        word_block = _block(words, self._idf, self._unknown)
        gram_block = _block(grams, self._idf, self._unknown)
        if not word_block or not gram_block:
            return word_block or gram_block
        a, b = math.sqrt(_WORD_SHARE), math.sqrt(1.0 - _WORD_SHARE)
        return {f: a * w for f, w in word_block.items()} | {f: b * w for f, w in gram_block.items()}

    def vector(self, terms: Sequence[str]) -> dict[str, float]:
        """The unit vector of a text's ``terms`` (features no example has included)."""
        return self._vector(*_raw(terms))

    def best(self, terms: Sequence[str], floor: float) -> tuple[float, int] | None:
        """The example most similar to ``terms`` among those reaching their threshold
        and ``floor``, as ``(score, example)``; ties go to the lower example index.
        None when none does."""
        query = self.vector(terms)
        # (most this feature can add, feature, its query weight), smallest first; the
        # feature breaks ties so the order, and so the float sums, are deterministic.
        bounded = sorted((q * self._max[f], f, q) for f, q in query.items() if f in self._postings)
        floor = max(floor, self._floor) - _SLACK
        # The lazy features: the longest prefix whose bound stays below ``floor``. Two
        # bounds on what they add to any example, the smaller counts: the sum of their
        # bounds, and the norm of their part of the query (Cauchy-Schwarz: an example's
        # vector has norm 1).
        total, squares, split = 0.0, 0.0, 0
        for bound, _, q in bounded:
            if min(total + bound, math.sqrt(squares + q * q)) >= floor * _LAZY_SHARE:
                break
            total, squares, split = total + bound, squares + q * q, split + 1
        # An example reaching ``floor`` has at least one of the features after ``split``.
        partials: dict[int, float] = {}
        get = partials.get  # the hot loop: one lookup per posting
        for _, feature, q in bounded[split:]:
            ids, weights = self._postings[feature]
            for example, weight in zip(ids, weights, strict=True):
                partials[example] = get(example, 0.0) + q * weight
        # Lazy features largest first; left[i]: what features i... can still add.
        lazy = bounded[:split][::-1]
        left = [0.0] * (split + 1)
        total = squares = 0.0
        for i in range(split - 1, -1, -1):
            total, squares = total + lazy[i][0], squares + lazy[i][2] ** 2
            left[i] = min(total, math.sqrt(squares))
        rest = left[0]
        candidates = sorted(
            ((p, -e) for e, p in partials.items() if p + rest >= floor), reverse=True
        )
        best: tuple[float, int] | None = None
        # Most promising first: once even the upper bound of the next one is below the
        # best score so far, none of the rest can win (ties are still scored: the lower
        # example wins them).
        for partial, negative in candidates:
            if best is not None and partial + rest < best[0] - _SLACK:
                break
            example = -negative
            target = max(floor, self._thresholds[example] - _SLACK)
            if best is not None:
                target = max(target, best[0] - _SLACK)
            score = partial
            vector = self.vectors[example]
            for i, (_, feature, q) in enumerate(lazy):
                if score + left[i] < target:
                    break
                value = vector.get(feature)
                if value is not None:
                    score += q * value
            else:
                if score < target or score < self._thresholds[example]:
                    continue
                if best is None or score > best[0] or (score == best[0] and example < best[1]):
                    best = (score, example)
        return best
