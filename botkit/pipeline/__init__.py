"""The message pipeline: middleware (explicit ``next``), handler groups, the generation
fallback.

>>> async def log_language(ctx: Context, next: Next) -> None:   # doctest: +SKIP
...     await next()
...     ctx.logger.info("replied in %s", ctx.reply.language if ctx.reply else None)
"""

from __future__ import annotations

from botkit.pipeline.chain import CORE, Middleware, Next, Pipeline
from botkit.pipeline.context import Context, Reply
from botkit.pipeline.generation import GenerationHandler, build_request
from botkit.pipeline.handlers import Handler, StopPropagation

__all__ = [
    "CORE",
    "Context",
    "GenerationHandler",
    "Handler",
    "Middleware",
    "Next",
    "Pipeline",
    "Reply",
    "StopPropagation",
    "build_request",
]
