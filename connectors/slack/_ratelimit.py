"""A workspace-wide budget for one Slack Web API method (a token bucket plus 429 holds).

Slack rate-limits most methods "per API method per app per workspace": ``chat.update``
is Tier 3, about 50 calls a minute across all channels. The per-channel lanes in
``_api.py`` cannot see that, so every ``chat.update`` also takes a token here, and a 429
on it holds the method for everyone until its ``Retry-After`` has passed.
"""

from __future__ import annotations

import asyncio

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
        self._tokens = self.capacity
        self._stamp: float | None = None
        self._held_until = 0.0
        # Waiters queue on one lock (asyncio.Lock wakes them in arrival order), so a
        # channel that asked first is served first whichever channel it is.
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        if self._stamp is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def _wait(self, now: float) -> float:
        """Seconds until a token can be taken (0: now)."""
        self._refill(now)
        held = self._held_until - now
        if held > 0:
            return held
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

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
                    wait = self._wait(now)
                    if wait <= 0:
                        self._tokens -= 1.0
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
        if self._wait(asyncio.get_running_loop().time()) > 0:
            return False
        self._tokens -= 1.0
        return True

    def refund(self) -> None:
        """Give back a token that was taken but not spent on a call."""
        self._tokens = min(self.capacity, self._tokens + 1.0)

    def hold(self, seconds: float) -> None:
        """Slack answered 429: nobody calls the method again for ``seconds``."""
        until = asyncio.get_running_loop().time() + max(0.0, seconds)
        self._held_until = max(self._held_until, until)

    def held_for(self) -> float:
        """Seconds left of the current 429 hold (0 when there is none)."""
        return max(0.0, self._held_until - asyncio.get_running_loop().time())
