"""Token-bucket rate limits, per socket and per client IP, with bounded memory."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["KeyedLimiter", "TokenBucket"]


class TokenBucket:
    """``burst`` actions at once, refilled continuously at ``rate`` per second."""

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens. Returns 0.0 when allowed, else the seconds to wait."""
        self._refill()
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        return (cost - self._tokens) / self.rate

    def refund(self, cost: float) -> None:
        """Give back ``cost`` tokens spent on an action that then did not happen."""
        self._refill()
        self._tokens = min(self.burst, self._tokens + cost)

    def is_full(self) -> bool:
        """True when the bucket has refilled completely (it then carries no state)."""
        self._refill()
        return self._tokens >= self.burst


class KeyedLimiter:
    """One bucket per key (client IP), at most ``max_keys`` of them.

    A full bucket is the same as a fresh one, so entries that refilled are dropped first;
    past ``max_keys`` the least recently used goes (a flood of spoofed-looking keys can
    then only reset other keys' limits, never grow memory).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` for ``key``; 0.0 when allowed, else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(cost)

    def refund(self, key: str, cost: float) -> None:
        """Give back what ``take(key, cost)`` spent (an evicted key has nothing to get)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.refund(cost)

    def _evict(self) -> None:
        # Drop refilled buckets among the oldest few, else the oldest one.
        # islice, not list(...)[:64]: copying every key (up to max_keys) for each new
        # client would make a flood of distinct IPs cost O(table) apiece.
        for key in list(itertools.islice(self._buckets, 64)):
            if self._buckets[key].is_full():
                del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
