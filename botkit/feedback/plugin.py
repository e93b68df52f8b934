"""The feedback plugin: customers rate the bot's answers with 👍 / 👎.

* Middleware puts the two buttons under every answer the model wrote (not under fixed
  texts, agents' messages or error notices).
* A handler in an early group (after the hand-off commands, before the language switch)
  takes a message that *is* one of the labels (what a click sends; typed, it counts
  too) as a rating of the newest reply that offered the buttons, stores it (once per
  reply and person: a second click replaces the first), publishes ``FeedbackGiven``
  (counted in ``botkit_feedback_total``) and thanks, says sorry, or hands the
  conversation to a colleague (``on_bad = "handoff"``).
* A label sent when no recent reply offered the buttons is an ordinary message.

``botkit feedback`` shows the counts and the latest replies rated bad.
"""

from __future__ import annotations

from collections.abc import Mapping

from botkit.events import Button, FeedbackGiven
from botkit.feedback import texts
from botkit.feedback.config import FeedbackConfig
from botkit.language.localized import pick, set_localized_reply
from botkit.pipeline import Context, Handler, Next, StopPropagation
from botkit.plugins import Plugin, PluginRegistry
from botkit.store._feedback import Rating
from botkit.store.records import ConversationStatus, StoredMessage

__all__ = ["FEEDBACK_GROUP", "FeedbackPlugin", "OfferRating", "RatingHandler"]

# After the hand-off commands (-200), before the language switch (-100).
FEEDBACK_GROUP = -150
# What a phone keyboard adds to a typed 👍: skin tones and the emoji variation selector.
_MODIFIERS = dict.fromkeys([*range(0x1F3FB, 0x1F400), 0xFE0F])


def _bare(text: str) -> str:
    return text.strip().translate(_MODIFIERS)


class OfferRating:
    """Adds the rating buttons to the model's answers."""

    def __init__(self, config: FeedbackConfig) -> None:
        self.buttons = (
            Button(config.good_label, config.good_label),
            Button(config.bad_label, config.bad_label),
        )

    async def __call__(self, ctx: Context, next: Next) -> None:
        await next()
        reply = ctx.reply
        if reply is not None and reply.source == "backend" and not reply.buttons:
            reply.buttons = self.buttons


class RatingHandler(Handler):
    """Records a click on a rating button (see the module docstring)."""

    def __init__(self, config: FeedbackConfig) -> None:
        self.config = config
        self.ratings: dict[str, Rating] = {
            _bare(config.good_label): "good",
            _bare(config.bad_label): "bad",
        }
        self.thanks = {**texts.THANKS, **config.thanks_replies}
        default_sorry = texts.HANDED_OFF if config.on_bad == "handoff" else texts.SORRY
        self.sorry = {**default_sorry, **config.sorry_replies}

    def check(self, ctx: Context) -> bool:
        return (
            not ctx.too_long
            and ctx.conversation.status == ConversationStatus.BOT
            and len(ctx.text) <= 64
            and _bare(ctx.text) in self.ratings
        )

    def _offered(self, reply: StoredMessage) -> bool:
        return any(b.value == self.config.good_label for b in reply.buttons)

    async def handle(self, ctx: Context) -> None:
        rating = self.ratings[_bare(ctx.text)]
        seq = await ctx.store.rate_reply(ctx.inbound, rating, self._offered)
        if seq is None:
            return  # nothing to rate: an ordinary message for the later handlers
        message = ctx.message
        given = FeedbackGiven(message.channel, message.conversation_key, rating=rating,
                              reply_seq=seq)  # fmt: skip
        await ctx.events.publish(given)
        ctx.logger.info("%s: reply seq=%d rated %s", ctx.describe(), seq, rating)
        if rating == "bad" and self.config.on_bad == "handoff":
            await ctx.hand_off(f"customer rated reply seq={seq} bad")
        self._confirm(ctx, self.thanks if rating == "good" else self.sorry)
        raise StopPropagation

    @staticmethod
    def _confirm(ctx: Context, table: Mapping[str, str]) -> None:
        set_localized_reply(ctx, lambda language: pick(table, language), source="feedback")


class FeedbackPlugin(Plugin[FeedbackConfig]):
    """The built-in ``feedback`` plugin (see the module docstring)."""

    Config = FeedbackConfig

    async def setup(self, registry: PluginRegistry) -> None:
        registry.add_middleware(OfferRating(self.config))
        registry.add_handler(RatingHandler(self.config), group=FEEDBACK_GROUP)
