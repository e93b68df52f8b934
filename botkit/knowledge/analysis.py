"""From text to the terms the knowledge base indexes and searches, in its language.

Words come from ``search_terms`` (any script; case-folded). With a Snowball stemmer for
the base's language (the bot's working language; the ones Lucene and PostgreSQL
full-text search use), "refunds", "refunded" and "refund" become one term. Stemmers are
written for accented words (Portuguese "devolução"/"devoluções", Russian "доставкой"),
but customers often type without accents. So each word gives the stem of the word as
written, accents then removed, and, when different, the stem of the word typed without
accents: "devolução" gives "devolu" and "devoluca", and "devolucao" typed by a customer
finds it through "devoluca". Passages and questions go through the same analyzer, so a
word in another language is at worst conflated oddly, but the same way on both sides.
Languages without a stemmer compare whole words, accents removed.

Function words (``stopwords``) are left out of questions only.

Snowball's stemmers keep their state on the object, so each thread has its own: the
index is built in a worker thread while the event loop searches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from functools import lru_cache

import snowballstemmer

from botkit.language.tags import primary_subtag, try_normalize
from botkit.language.words import fold_accents, search_terms

__all__ = ["Analyzer"]

_ALGORITHMS = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german",
    "el": "greek", "en": "english", "es": "spanish", "eu": "basque", "fi": "finnish",
    "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian",
    "id": "indonesian", "it": "italian", "lt": "lithuanian", "nb": "norwegian",
    "ne": "nepali", "nl": "dutch", "nn": "norwegian", "no": "norwegian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip


def _stemmer(algorithm: str) -> Callable[[str], str]:
    """A thread-safe stem function."""
    local = threading.local()

    def stem(word: str) -> str:
        stemmer = getattr(local, "stemmer", None)
        if stemmer is None:
            stemmer = local.stemmer = snowballstemmer.stemmer(algorithm)
        result: str = stemmer.stemWord(word)
        return result

    return stem


class Analyzer:
    """Terms of texts in one language (see the module docstring)."""

    def __init__(self, language: str | None) -> None:
        tag = try_normalize(language)
        algorithm = _ALGORITHMS.get(primary_subtag(tag)) if tag is not None else None
        self.language = tag
        self._stem = _stemmer(algorithm) if algorithm is not None else None
        # A base repeats its words, and stemming is ~20 us a word in pure Python.
        self._word = lru_cache(maxsize=65536)(self._analyze)

    def _analyze(self, word: str) -> tuple[str, tuple[str, ...]]:
        """``word`` (as written, accents kept) without accents, and its terms."""
        plain = fold_accents(word)
        if self._stem is None:
            return plain, (plain,)
        first = fold_accents(self._stem(word))
        second = self._stem(plain) if plain != word else first
        return plain, (first,) if second == first else (first, second)

    def words(self, text: str, *, leave_out: Collection[str] = ()) -> list[tuple[str, ...]]:
        """Each word of ``text`` as its terms (one, or two for an accented word: see the
        module docstring), without the words in ``leave_out`` (accent-free function
        words, see ``stopwords``). A question's word counts once, whichever of its terms
        a passage has."""
        found: list[tuple[str, ...]] = []
        for word in search_terms(text, accents=True):
            plain, terms = self._word(word)
            if plain not in leave_out:
                found.append(terms)
        return found

    def terms(self, text: str) -> list[str]:
        """All terms of ``text`` (what a passage is indexed under)."""
        return [term for terms in self.words(text) for term in terms]
