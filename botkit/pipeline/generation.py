"""The fallback handler: ask the generation backend when no handler answered."""

from __future__ import annotations

from botkit.backends.protocol import ChatMessage, GenerationRequest
from botkit.config.settings import BotSettings
from botkit.pipeline.context import Context
from botkit.pipeline.handlers import Handler

__all__ = ["GenerationHandler", "build_request"]


def build_request(ctx: Context, settings: BotSettings) -> GenerationRequest:
    """System prompt (with this message's extra instructions), bounded history, then the
    current message (in the working language).

    Sampling values are left to the backend's configured defaults.
    """
    system = "\n\n".join(p for p in (settings.system_prompt, *ctx.instructions) if p)
    messages = [ChatMessage("system", system)] if system else []
    messages.extend(ctx.history)
    messages.append(ChatMessage("user", ctx.model_text))
    return GenerationRequest(messages=tuple(messages))


class GenerationHandler(Handler):
    """Streams the backend's answer. The stream is consumed when the reply is delivered,
    so a backend failure shows up there and is answered with the fallback reply."""

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    def check(self, ctx: Context) -> bool:
        return ctx.reply is None

    async def handle(self, ctx: Context) -> None:
        request = build_request(ctx, self.settings)
        ctx.set_stream(ctx.backend.generate(request), source="backend")
