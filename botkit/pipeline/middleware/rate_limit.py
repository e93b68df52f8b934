"""Per-contact rate limit: a token bucket per (channel, contact).

Messages over the limit are already stored (nothing is lost); they are just not
processed. The contact is told once per burst, not once per message, so a flood does not
turn into a flood of replies.

The limit protects the bot's answering (the model), so it applies only to conversations
the bot answers. While a human has the conversation or it waits for one (the status read
when the message was stored, ``ctx.conversation``), every message passes: it is the
agent's to read, the bot answers none of them, and the return command (``/bot``), which
the hand-off confirmation tells the customer to send, must always reach the plugin that
gives the conversation back. A customer flooding an agent is bounded where messages come
in (each channel's own per-address and flood limits); their messages are stored whatever
this step decides, so refusing them here would only hide them from the agent. What
passes still costs a detection and, in ``pivot`` mode, a translation each.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botkit.config.settings import RateLimitSettings
from botkit.language.default_texts import RATE_LIMIT_REPLIES, set_default_reply
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context
from botkit.ratelimit import KeyedLimiter
from botkit.store.records import ConversationStatus

__all__ = ["RATE_LIMITED", "RateLimitMiddleware"]

# Set in ``ctx.state`` for a message over the limit (the bot counts them in its metrics).
RATE_LIMITED = "rate_limited"

_HUMAN = frozenset({ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN})


class RateLimitMiddleware:
    """Allows ``messages`` per ``window_seconds`` per contact, with bursts up to
    ``messages``; at most ``max_tracked_contacts`` contacts are remembered (contact ids
    can be forged, see :class:`botkit.ratelimit.KeyedLimiter`)."""

    def __init__(
        self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._limiter = KeyedLimiter(
            rate=settings.messages / settings.window_seconds,  # tokens per second
            burst=settings.messages,
            max_keys=settings.max_tracked_contacts,
            clock=clock,
        )

    @property
    def tracked(self) -> int:
        """How many contacts the limiter remembers now (at most ``max_tracked_contacts``)."""
        return len(self._limiter)

    def allow(self, channel: str, contact: str) -> tuple[bool, bool]:
        """Take one token. Returns (allowed, first refusal since the last allowed one)."""
        key = (channel, contact)
        if self._limiter.take(key) == 0.0:
            return True, False
        return False, self._limiter.refusals(key) == 1

    async def __call__(self, ctx: Context, next: Next) -> None:
        if not self.settings.enabled or ctx.conversation.status in _HUMAN:
            await next()
            return
        allowed, notify = self.allow(ctx.message.channel, ctx.message.contact.external_id)
        if allowed:
            await next()
            return
        ctx.state[RATE_LIMITED] = True
        ctx.logger.info("%s: rate limit exceeded", ctx.describe())
        if notify:
            set_default_reply(ctx, self.settings.reply, RATE_LIMIT_REPLIES, source="rate_limited")
