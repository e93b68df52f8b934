"""Built-in middleware, one concern per module."""

from __future__ import annotations

from botkit.pipeline.middleware.conversation import (
    CurrentConversationMiddleware,
    LoadConversationMiddleware,
)
from botkit.pipeline.middleware.language import LanguageDetectionMiddleware
from botkit.pipeline.middleware.native import NativeLanguageMiddleware
from botkit.pipeline.middleware.rate_limit import RateLimitMiddleware
from botkit.pipeline.middleware.sanitize import SanitizeMiddleware
from botkit.pipeline.middleware.translation import (
    NoticeTranslationMiddleware,
    TranslationMiddleware,
)

__all__ = [
    "CurrentConversationMiddleware",
    "LanguageDetectionMiddleware",
    "LoadConversationMiddleware",
    "NativeLanguageMiddleware",
    "NoticeTranslationMiddleware",
    "RateLimitMiddleware",
    "SanitizeMiddleware",
    "TranslationMiddleware",
]
