"""Token-bucket rate limits, one bucket per key, with bounded memory.

One implementation for the core's per-contact limit
(``botkit.pipeline.middleware.rate_limit``), the web channel's per-socket and
per-client-IP limits (``connectors.web``) and the Slack connector's workspace-wide
per-method budgets (``connectors.slack._ratelimit``, which adds the async wait and the
429 holds): the core cannot import a connector, so the bucket lives here and the
connectors import it.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["KeyedLimiter", "TokenBucket"]

# How many of the least recently used keys a new key's eviction looks at for refilled
# buckets. Bounded so that a flood of distinct keys costs O(1) apiece, not O(table).
_EVICT_SCAN = 64


class TokenBucket:
    """``burst`` actions at once, refilled continuously at ``rate`` per second.

    Args:
        rate: tokens added per second; must be positive.
        burst: the bucket's capacity, and what a new bucket starts with; need not be
            whole (the Slack connector's per-method budgets hold 10 s' worth of calls).
        clock: monotonic seconds; injected by tests.

    Attributes:
        refusals: refused ``take`` calls since the last allowed one, so a caller can
            tell a client once per burst rather than once per refused action.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate", "refusals")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.refusals = 0
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens.

        Returns:
            0.0 when allowed, else the seconds until ``cost`` tokens are there.
        """
        self._refill()
        if self._tokens >= cost:
            self._tokens -= cost
            self.refusals = 0
            return 0.0
        self.refusals += 1
        return (cost - self._tokens) / self.rate

    def refund(self, cost: float) -> None:
        """Give back ``cost`` tokens spent on an action that then did not happen."""
        self._refill()
        self._tokens = min(self.burst, self._tokens + cost)

    def is_full(self) -> bool:
        """True when the bucket has refilled completely (it is then the same as a new one:
        its next ``take`` is allowed and resets ``refusals``)."""
        self._refill()
        return self._tokens >= self.burst


class KeyedLimiter:
    """One :class:`TokenBucket` per key, at most ``max_keys`` of them.

    The keys come from outside (a contact id a channel reports, a client's IP address)
    and a sender can forge as many as it likes, so the table must not grow with them:
    without a bound, a flood of made-up contact ids or addresses would grow memory
    without limit. A full bucket is the same as a fresh one, so when a new key finds
    the table full, refilled buckets among the least recently used are dropped first,
    then the least recently used one. A flood of forged keys can then only reset other
    keys' limits (a forgotten key comes back with a full bucket), never grow memory.

    Args:
        rate: tokens per second for each key's bucket.
        burst: each bucket's capacity.
        max_keys: most buckets kept at once; at least 1.
        clock: monotonic seconds, shared by every bucket; injected by tests.
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
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def take(self, key: Hashable, cost: float = 1.0) -> float:
        """Spend ``cost`` for ``key``.

        Returns:
            0.0 when allowed, else the seconds to wait.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(cost)

    def refund(self, key: Hashable, cost: float) -> None:
        """Give back what ``take(key, cost)`` spent (an evicted key has nothing to get)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.refund(cost)

    def refusals(self, key: Hashable) -> int:
        """Refused takes for ``key`` since its last allowed one (0 for an unknown key)."""
        bucket = self._buckets.get(key)
        return 0 if bucket is None else bucket.refusals

    def _evict(self) -> None:
        # islice, not list(...)[:64]: copying every key (up to max_keys) for each new
        # key would make a flood of distinct keys cost O(table) apiece.
        for key in list(itertools.islice(self._buckets, _EVICT_SCAN)):
            if self._buckets[key].is_full():
                del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets
