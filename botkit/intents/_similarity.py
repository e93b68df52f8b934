"""How alike a short message is to example phrasings: a cosine over weighted words and
character trigrams, searched through an inverted index.

Why this measure: intents are matched on short messages (a few words), where what
matters is which content words two texts share. Each word has a weight: its IDF over the
intents (content words), or a low fixed weight (function words, see ``_FIXED``). Words
alone miss what customers type: "refunds" for "refund", "cancelled" for "cancel", "ordr"
for "order". Character trigrams of the words of 3+ letters (padded, so word starts and
ends count) catch those: one typo leaves most of a longer word's trigrams intact. 30% of a
word's squared weight goes to the word itself and 70% to its trigrams (weighted by their
own IDF among themselves); shorter words, and Chinese or Japanese character pairs, keep
it all. The vector is then scaled to unit length, so an exact repeat scores 1.0.
Document frequency counts intents, not examples: an intent with many examples that all
say "refund" does not make "refund" common.

Function words get a fixed weight because an IDF over a handful of intents cannot tell
"what", "are", "your" from "opening": with the IDF alone, "What are your prices?" was
0.61 like "What are your opening hours?" in a two-intent shop, and "Is that all?" 0.74
like "Thanks, that's all". Accuracy on the labelled sets of ``benchmarks/intents.py``:
see docs/plugins.md.

A message is scored against every example through an inverted index (feature ->
examples), pruned exactly (MaxScore): the query's features are sorted by the most each
can add to any example's score; the smallest ones, which together cannot reach the
threshold, only refine the candidates the others found, most promising first, and each
candidate only while it can still win. Pure Python: 0.2 ms typical, under 1 ms at p99,
for 1,000 intents of 10 examples (``benchmarks/intents.py``). Examples that share most
of their words cost far more, as nothing can be pruned: 400 intents of 45 examples drawn
from 30 words, 26 ms typical and 49 ms at worst; the plugin matches with a matcher that
large in a worker thread (``botkit.intents.plugin.THREAD_FROM_POSTINGS``).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence

from botkit.language.stopwords import stopwords
from botkit.language.words import search_terms

__all__ = ["SimilarityIndex"]

# Share of a word's squared weight that goes to the word itself, the rest to its
# trigrams.
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

# Fixed weights, where content words weigh their IDF (1.0 for a word every intent uses,
# about 2.9 for one of 12 intents' words). Function words (the knowledge plugin's lists:
# articles, pronouns, auxiliaries, prepositions, question words) weigh 0.2: they still
# count, so an example made of them alone ("Are you there?") matches itself, but a
# shared frame ("What are your ...", "When will my ...") no longer makes two questions
# alike. Greetings, thanks and goodbyes weigh 1.0, like a word every intent uses: they
# are what a greeting or goodbye intent is made of ("Thanks, that's all" is not "Is that
# all?"), but a greeting before a question ("Hello, the item is broken") does not make
# it one.
#
# Every language's list, not the message's: examples come in any language, unlabelled,
# and a word must weigh the same in the message and in the example for the cosine to
# say which words they share. Without Spanish "cuál", "es", "su" among them, "¿Cuál es
# su precio?" would match "¿Cuál es su horario?" as English questions did. The cost:
# the few words that are a function word in one language and a content word in another
# ("son", "men", "van", "hat", Spanish "pelo" and "dos") weigh 0.2 everywhere, and
# "good" or German "morgen" (also "tomorrow") 1.0.
_STOPWORD_LANGUAGES = ("de", "en", "es", "fr", "it", "nl", "pt")  # those with a list
_FUNCTION_WEIGHT = 0.2
_GREETING_WEIGHT = 1.0
_GREETINGS = (
    "hi hello hey good morning afternoon evening thank thanks bye goodbye hola buenos "
    "buenas días tardes noches gracias adiós bonjour bonsoir merci hallo guten morgen "
    "abend danke tschüss olá bom boa dia tarde obrigado obrigada ciao buongiorno "
    "buonasera grazie goedemorgen goedenavond dank bedankt"
)
_FIXED: dict[str, float] = {
    word: _FUNCTION_WEIGHT for language in _STOPWORD_LANGUAGES for word in stopwords(language)
} | dict.fromkeys(search_terms(_GREETINGS), _GREETING_WEIGHT)


def _grams(word: str) -> Counter[str]:
    """The trigram features of ``word`` (none when it is short)."""
    if len(word) < _MIN_GRAM_WORD:
        return Counter()
    padded = f" {word} "
    return Counter(_GRAM_KEY + padded[i : i + _GRAM] for i in range(len(padded) - 2))


class SimilarityIndex:
    """Examples' vectors and their inverted index (see the module docstring).

    Args:
        examples: each example's terms (``search_terms``).
        groups: each example's intent (document frequency counts intents).
        thresholds: each example's threshold.
    """

    def __init__(
        self,
        examples: Sequence[Sequence[str]],
        groups: Sequence[int],
        thresholds: Sequence[float],
    ) -> None:
        self._thresholds = list(thresholds)
        self._floor = min(self._thresholds, default=1.0)
        words = [Counter(terms) for terms in examples]
        features_of: dict[int, set[str]] = {}
        for counts, group in zip(words, groups, strict=True):
            features = features_of.setdefault(group, set())
            for word in counts:
                features.add(word)
                features.update(_grams(word))
        df: Counter[str] = Counter()
        for features in features_of.values():
            df.update(features)
        n = len(features_of)
        # Smoothed IDF (never 0, so a word every intent shares still counts a little).
        # A message's word no example has counts as one of a single intent: "prices" in
        # "What are your prices?" is what the message is about.
        self._idf = {f: math.log((1 + n) / (1 + d)) + 1.0 for f, d in df.items()}
        self._unknown = math.log((1 + n) / 2) + 1.0
        # One string object per feature, shared by all vectors (a third of the memory).
        shared = {f: f for f in df}
        self.vectors = [{shared[f]: w for f, w in self._vector(counts).items()} for counts in words]
        ids: dict[str, array[int]] = {}
        weights: dict[str, array[float]] = {}
        for example, vector in enumerate(self.vectors):
            for feature, weight in vector.items():
                ids.setdefault(feature, array("i")).append(example)
                weights.setdefault(feature, array("d")).append(weight)
        self._postings = {f: (ids[f], weights[f]) for f in ids}
        self.postings = sum(len(i) for i in ids.values())  # what a match may have to read
        self._max = {f: max(w) for f, w in weights.items()}

    def _vector(self, words: Counter[str]) -> dict[str, float]:
        """The unit vector of a text's word counts: each word's weight split between
        the word and its trigrams (see the module docstring)."""
        idf, unknown = self._idf, self._unknown
        word_part, gram_part = math.sqrt(_WORD_SHARE), math.sqrt(1.0 - _WORD_SHARE)
        vector: dict[str, float] = {}
        for word, n in words.items():
            weight = (1.0 + math.log(n)) * _FIXED.get(word, idf.get(word, unknown))
            grams = {g: c * idf.get(g, unknown) for g, c in _grams(word).items()}
            if not grams:
                vector[word] = vector.get(word, 0.0) + weight
                continue
            vector[word] = vector.get(word, 0.0) + word_part * weight
            scale = gram_part * weight / math.sqrt(sum(w * w for w in grams.values()))
            for gram, w in grams.items():
                vector[gram] = vector.get(gram, 0.0) + scale * w
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {f: w / norm for f, w in vector.items()} if norm else {}

    def vector(self, terms: Sequence[str]) -> dict[str, float]:
        """The unit vector of a text's ``terms`` (features no example has included)."""
        return self._vector(Counter(terms))

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
                if score < target:  # target includes the threshold, less the slack
                    continue
                if best is None or score > best[0] or (score == best[0] and example < best[1]):
                    best = (score, example)
        return best
