"""Word stems, so "refunds", "refunded" and "refund" find each other.

The Snowball stemmers (the ones Lucene and PostgreSQL full-text search use) for the
knowledge base's language, the bot's working language. Passages and questions go
through the same stemmer, so a word in another language is at worst conflated a
little oddly, but always the same way on both sides. Languages without a stemmer
compare whole words.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache

import snowballstemmer

from botkit.language.tags import primary_subtag, try_normalize

__all__ = ["stemmer_for"]

_ALGORITHMS = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german",
    "el": "greek", "en": "english", "es": "spanish", "eu": "basque", "fi": "finnish",
    "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian",
    "id": "indonesian", "it": "italian", "lt": "lithuanian", "nb": "norwegian",
    "ne": "nepali", "nl": "dutch", "nn": "norwegian", "no": "norwegian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip


def _unchanged(term: str) -> str:
    return term


@cache
def stemmer_for(language: str | None) -> Callable[[str], str]:
    """The stem of a search term in ``language`` (the term itself without a stemmer)."""
    tag = try_normalize(language)
    algorithm = _ALGORITHMS.get(primary_subtag(tag)) if tag is not None else None
    if algorithm is None:
        return _unchanged
    stemmer = snowballstemmer.stemmer(algorithm)
    # Stemming is ~20 us a word in pure Python; a knowledge base repeats its words.
    return lru_cache(maxsize=65536)(stemmer.stemWord)
