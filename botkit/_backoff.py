"""The waits between tries while the database is unavailable (replies, kept messages)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

__all__ = ["doubling"]


def doubling(first: float, most: float) -> Iterator[float]:
    """``first``, then each wait twice the last, up to ``most`` (for ever)."""
    delay = first
    while delay < most:
        yield delay
        delay *= 2
    yield from itertools.repeat(most)
