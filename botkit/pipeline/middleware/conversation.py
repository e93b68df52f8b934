"""Load the conversation's recent history for the model, bounded by turns and tokens.

A conversation that a human is handling (or that is closed) is not answered by the bot:
the chain stops here without a reply; the message is stored for the agent.
"""

from __future__ import annotations

from collections.abc import Callable

from botkit.backends.protocol import ChatMessage
from botkit.config.settings import BotSettings
from botkit.events import Direction
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context
from botkit.store.records import ConversationStatus, MessageStatus

__all__ = ["LoadConversationMiddleware", "approx_tokens"]

# Inbound messages that were refused (too long) and replies the customer never received
# are not part of the conversation as the customer saw it.
_SKIP = {MessageStatus.REJECTED, MessageStatus.FAILED}


def approx_tokens(text: str) -> int:
    """Rough token count (~4 characters per token for English BPE vocabularies)."""
    return len(text) // 4 + 1


class LoadConversationMiddleware:
    """Fills ``ctx.history`` (oldest first, without the current message)."""

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: Context, next: Next) -> None:
        if ctx.conversation.status != ConversationStatus.BOT:
            ctx.logger.info(
                "%s: conversation is %s; the bot does not answer",
                ctx.describe(),
                ctx.conversation.status,
            )
            return
        counter: Callable[[str], int] = getattr(ctx.backend, "count_tokens", approx_tokens)
        stored = await ctx.store.history(
            ctx.conversation.id,
            max_turns=self.settings.history_turns,
            token_budget=self.settings.history_token_budget,
            count_tokens=counter,
        )
        ctx.history = [
            ChatMessage(
                role="user" if m.direction == Direction.INBOUND else "assistant",
                content=m.model_text,
            )
            for m in stored
            if m.id != ctx.inbound.id and m.status not in _SKIP
        ]
        await next()
