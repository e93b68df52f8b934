"""The web channel's per-socket and per-client-IP rate limits.

The buckets are botkit's (:mod:`botkit.ratelimit`), shared with the core's per-contact
limit so the two cannot drift apart; this module keeps the connector's import path.
"""

from __future__ import annotations

from botkit.ratelimit import KeyedLimiter, TokenBucket

__all__ = ["KeyedLimiter", "TokenBucket"]
