"""Sanitize input and enforce the message length limit.

The bot stores the sanitized text before the pipeline runs (see ``Bot.submit``); this
step makes sure the pipeline sees the same safe text and answers over-long or empty
messages with a clear reply instead of passing them on. Nothing is truncated.

A message without text (a photo, a file) in a conversation a human agent has is not the
bot's to answer: it is stored for the agent, who sees its attachments, and the bot says
nothing ("I can only read text" would be wrong: the agent can look at it). It is the
agent's only if they still have the conversation when that is recorded
(``Context.keep_for_agent``): given back to the bot meanwhile, it gets the bot's reply.
So is a message whose text the channel made for the agent (``ctx.unreadable_reply``: a
Telegram location), answered with the channel's own words when the bot has it.

An over-long message in such a conversation is the agent's the same way: it stays stored
(``rejected``, out of the model's history) for them to read, and the bot says nothing;
"your message is too long" is the bot's answer, and the bot is not answering here.
"""

from __future__ import annotations

from botkit.config.settings import BotSettings
from botkit.language.default_texts import EMPTY_REPLIES, TOO_LONG_REPLIES, set_default_reply
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context
from botkit.sanitize import sanitize_text
from botkit.store.records import ConversationStatus

__all__ = ["SanitizeMiddleware"]

_HUMAN = frozenset({ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN})


class SanitizeMiddleware:
    """Stops over-long and empty messages with the configured replies."""

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: Context, next: Next) -> None:
        ctx.text = sanitize_text(ctx.text)  # idempotent: cheap when already clean
        if ctx.too_long or len(ctx.text) > self.settings.max_message_chars:
            ctx.too_long = True
            if ctx.conversation.status in _HUMAN and await ctx.keep_for_agent():
                ctx.logger.info("%s: too long, kept for the agent", ctx.describe())
                return
            limits = {"length": str(len(ctx.text)), "limit": str(self.settings.max_message_chars)}
            too_long = self.settings.too_long_reply
            set_default_reply(ctx, too_long, TOO_LONG_REPLIES, source="too_long", values=limits)
            return
        unreadable = ctx.unreadable_reply
        if unreadable is not None or not ctx.text.strip():
            # The agent's only if they still have it when that is recorded: one who gave
            # the conversation back meanwhile has left, and the bot answers.
            if ctx.conversation.status in _HUMAN and await ctx.keep_for_agent():
                ctx.logger.info("%s: no text, kept for the agent", ctx.describe())
            elif unreadable is not None:
                # In the customer's language already: not a notice to translate.
                text, language = unreadable
                ctx.set_reply(text, source="empty").language = language
            else:
                set_default_reply(ctx, self.settings.empty_reply, EMPTY_REPLIES, source="empty")
            return
        await next()
