"""A workspace-wide budget for one Slack Web API method (a token bucket plus 429 holds).

Slack rate-limits most methods "per API method per app per workspace": ``chat.update``
is Tier 3, about 50 calls a minute across all channels. The per-channel lanes in
``_api.py`` cannot see that, so every ``chat.update`` also takes a token here, and a 429
on it holds the method for everyone until its ``Retry-After`` has passed.

The bucket is botkit's one token bucket (:class:`botkit.ratelimit.TokenBucket`); what
this adds is Slack's: waiting for a token in arrival order, bounded by a deadline, and
the 429 holds.
"""

from __future__ import annotations

import asyncio

from botkit.ratelimit import TokenBucket

__all__ = ["MethodBudget"]

# The bucket holds this many seconds' worth of calls: a short burst (the first edits of
# a few replies) goes out at once, a sustained rate is held to ``per_minute``.
_BURST_SECONDS = 10.0


class MethodBudget:
    """At most ``per_minute`` calls a minute (bursts up to 10 s' worth), FIFO.

    Args:
        per_minute: sustained rate; must be positive.

    Raises:
        ValueError: ``per_minute`` is not positive.
    """

    def __init__(self, per_minute: float) -> None:
        if not per_minute > 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = max(1.0, self.rate * _BURST_SECONDS)
        # On time.monotonic, which is what asyncio's loop.time() reads: the bucket only
        # answers durations (seconds to wait), the deadlines and holds are in loop time.
        self._bucket = TokenBucket(self.rate, self.capacity)
        self._held_until = 0.0  # loop time
        # Waiters queue on one lock (asyncio.Lock wakes them in arrival order), so a
        # channel that asked first is served first whichever channel it is.
        self._lock = asyncio.Lock()

    def _take(self, now: float) -> float:
        """Take a token if one can be taken now (0.0); else, taking nothing, the seconds
        until one can: the rest of a 429 hold, or until the bucket has a token."""
        held = self._held_until - now
        if held > 0:
            return held
        return self._bucket.take()

    async def acquire(self, deadline: float | None = None) -> bool:
        """Wait for a token (and for any 429 hold to pass), then take it.

        Args:
            deadline: loop time after which to stop waiting; None waits as long as it takes.

        Returns:
            True with the token taken; False (nothing taken) when it would come after
            ``deadline``.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline), self._lock:
                while True:
                    now = loop.time()
                    wait = self._take(now)
                    if wait <= 0:
                        return True
                    if deadline is not None and now + wait > deadline:
                        return False  # known now: no use waiting until the deadline
                    await asyncio.sleep(wait)
        except TimeoutError:
            return False  # still queued behind other callers at the deadline

    def try_acquire(self) -> bool:
        """Take a token if one is free right now, without waiting; False otherwise.

        Also False while other callers wait in ``acquire``: they asked first (they are
        the edits that must go out), and a call that can be skipped never jumps ahead.
        """
        if self._lock.locked():
            return False
        return self._take(asyncio.get_running_loop().time()) <= 0

    def refund(self) -> None:
        """Give back a token that was taken but not spent on a call."""
        self._bucket.refund(1.0)

    def hold(self, seconds: float) -> None:
        """Slack answered 429: nobody calls the method again for ``seconds``."""
        until = asyncio.get_running_loop().time() + max(0.0, seconds)
        self._held_until = max(self._held_until, until)

    def held_for(self) -> float:
        """Seconds left of the current 429 hold (0 when there is none)."""
        return max(0.0, self._held_until - asyncio.get_running_loop().time())
