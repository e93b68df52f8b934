"""Built-in middleware, one concern per module."""

from __future__ import annotations

from botkit.pipeline.middleware.conversation import LoadConversationMiddleware
from botkit.pipeline.middleware.rate_limit import RateLimitMiddleware
from botkit.pipeline.middleware.sanitize import SanitizeMiddleware

__all__ = [
    "LoadConversationMiddleware",
    "RateLimitMiddleware",
    "SanitizeMiddleware",
]
