"""Per-contact rate limit: a token bucket per (channel, contact).

Messages over the limit are already stored (nothing is lost); they are just not
processed. The contact is told once per burst, not once per message, so a flood does not
turn into a flood of replies.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from botkit.config.settings import RateLimitSettings
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context

__all__ = ["RATE_LIMITED", "RateLimitMiddleware"]

# Set in ``ctx.state`` for a message over the limit (the bot counts them in its metrics).
RATE_LIMITED = "rate_limited"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    notified: bool = False


class RateLimitMiddleware:
    """Allows ``messages`` per ``window_seconds`` per contact, with bursts up to
    ``messages``."""

    def __init__(
        self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._rate = settings.messages / settings.window_seconds  # tokens per second
        # LRU: the least recently seen contact is forgotten first when the table is full.
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    def allow(self, channel: str, contact: str) -> tuple[bool, bool]:
        """Take one token. Returns (allowed, first refusal since the last allowed one)."""
        now = self._clock()
        key = (channel, contact)
        bucket = self._buckets.get(key)
        capacity = float(self.settings.messages)
        if bucket is None:
            bucket = _Bucket(tokens=capacity, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.settings.max_tracked_contacts:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.notified = False
            return True, False
        first = not bucket.notified
        bucket.notified = True
        return False, first

    async def __call__(self, ctx: Context, next: Next) -> None:
        if not self.settings.enabled:
            await next()
            return
        allowed, notify = self.allow(ctx.message.channel, ctx.message.contact.external_id)
        if allowed:
            await next()
            return
        ctx.state[RATE_LIMITED] = True
        ctx.logger.info("%s: rate limit exceeded", ctx.describe())
        if notify:
            ctx.set_reply(self.settings.reply, source="rate_limited")
