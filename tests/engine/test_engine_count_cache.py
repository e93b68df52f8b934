"""The local engine's remembered token counts are bounded by the characters they keep.

Counts are remembered by text (a conversation's history is counted again for each
reply); 4,096 entries alone let long messages hold hundreds of megabytes.
"""

from __future__ import annotations

from typing import Any

from botkit.backends import local_engine
from botkit.backends.local_engine import LocalEngineBackend


class CharTokenizer:
    """One token per character; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        self.calls += 1
        return [0] * len(text)


def backend_counting() -> tuple[LocalEngineBackend, CharTokenizer]:
    backend = LocalEngineBackend()
    tokenizer = CharTokenizer()
    backend._count_tokenizer = tokenizer
    return backend, tokenizer


def kept_chars(backend: Any) -> int:
    return sum(len(text) for text in backend._token_counts)


def test_the_counts_kept_are_bounded_by_characters() -> None:
    backend, _ = backend_counting()
    limit = local_engine._TOKEN_COUNT_CHARS_KEPT
    texts = [chr(ord("a") + n) * (limit // 4) for n in range(10)]
    for text in texts:
        assert backend.count_tokens(text) == len(text)
    assert kept_chars(backend) <= limit
    assert list(backend._token_counts) == texts[-4:]  # the newest kept
    assert backend._token_count_chars == kept_chars(backend)


def test_a_text_over_the_bound_is_counted_but_not_kept() -> None:
    backend, tokenizer = backend_counting()
    backend.count_tokens("hello")
    huge = "x" * (local_engine._TOKEN_COUNT_CHARS_KEPT + 1)
    assert backend.count_tokens(huge) == len(huge)
    assert list(backend._token_counts) == ["hello"]
    calls = tokenizer.calls
    assert backend.count_tokens("hello") == 5 and tokenizer.calls == calls  # remembered


def test_the_entry_bound_still_holds() -> None:
    backend, _ = backend_counting()
    for n in range(local_engine._TOKEN_COUNTS_KEPT + 10):
        backend.count_tokens(f"message {n}")
    assert len(backend._token_counts) == local_engine._TOKEN_COUNTS_KEPT
    assert backend._token_count_chars == kept_chars(backend)
