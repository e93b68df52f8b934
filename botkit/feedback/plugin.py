"""The feedback plugin: customers rate the bot's answers with 👍 / 👎.

* Middleware puts the two buttons under every answer the model wrote (not under fixed
  texts or agents' messages; a notice that replaces the answer drops them). On channels
  that keep every answer's buttons (Telegram, Slack), a button's value names the
  customer message the answer answered ("👍 #3"), so a click on an older answer's
  buttons rates that answer; the widget, which shows them under the newest answer only,
  gets the bare label.
* A handler in an early group (after the hand-off commands, before the language switch)
  takes such a click, or a typed thumb (the newest answer that offered the buttons, if
  nothing but customers' messages and replies to ratings came after it, and who handles
  the conversation has not changed since: ``FeedbackStore.rate_reply``), as a rating;
  stores it once per answer and person (another click replaces it); publishes
  ``FeedbackGiven`` when the person's rating is new or changed (counted in
  ``botkit_feedback_total``); and thanks, says sorry, or hands the conversation over
  (``on_bad = "handoff"``, through the hand-off plugin's desk when it is enabled).
* A label sent when no answer offered the buttons, or typed after someone else's word
  (a colleague's message, an intent's reply, a hand-off confirmation, a hand-off or
  ``/bot``), is an ordinary message.

``botkit feedback`` shows the counts and the latest answers rated bad.
"""

from __future__ import annotations

import re

from botkit.events import Button, FeedbackGiven
from botkit.feedback import texts
from botkit.feedback.config import FeedbackConfig, bare_label
from botkit.handoff.desk import request_handoff, warn_without_desk
from botkit.language.localized import fallback_key, pick, set_localized_reply
from botkit.pipeline import Context, Handler, Next, StopPropagation
from botkit.plugins import Plugin, PluginRegistry
from botkit.store._feedback import Rating
from botkit.store.records import ConversationStatus, StoredMessage

__all__ = ["FEEDBACK_GROUP", "FeedbackPlugin", "OfferRating", "RatingHandler"]

# After the hand-off commands (-200), before the language switch (-100).
FEEDBACK_GROUP = -150
# A button's value names the message its answer answered: "👍 #12". On Telegram and
# Slack every answer keeps its buttons, so a click may rate an older one.
_ANSWERING = re.compile(r"(.+?) #([0-9]{1,9})")


class OfferRating:
    """Adds the rating buttons to the model's answers."""

    def __init__(self, config: FeedbackConfig) -> None:
        self.labels = (config.good_label, config.bad_label)

    async def __call__(self, ctx: Context, next: Next) -> None:
        await next()
        reply = ctx.reply
        if reply is not None and reply.source == "backend" and not reply.buttons:
            # Numbered only where an older answer's buttons can still be clicked: the
            # widget shows the value as the visitor's message, and there a click is
            # always about the newest answer.
            seq = f" #{ctx.inbound.seq}" if ctx.quick_replies_stay else ""
            reply.buttons = tuple(Button(label, f"{label}{seq}") for label in self.labels)


class RatingHandler(Handler):
    """Records a click on a rating button (see the module docstring)."""

    def __init__(self, config: FeedbackConfig) -> None:
        self.config = config
        self.ratings: dict[str, Rating] = {
            bare_label(config.good_label): "good",
            bare_label(config.bad_label): "bad",
        }
        self.thanks = {**texts.THANKS, **config.thanks_replies}
        default_sorry = texts.HANDED_OFF if config.on_bad == "handoff" else texts.SORRY
        self.sorry = {**default_sorry, **config.sorry_replies}

    def parse(self, text: str) -> tuple[Rating, int | None] | None:
        """The rating ``text`` gives and the message its answer answered (None: a thumb
        typed by hand), or None when it is no rating."""
        if len(text) > 80:
            return None
        label, answering = bare_label(text), None
        if (numbered := _ANSWERING.fullmatch(label)) is not None:
            label, answering = bare_label(numbered.group(1)), int(numbered.group(2))
        rating = self.ratings.get(label)
        return None if rating is None else (rating, answering)

    def check(self, ctx: Context) -> bool:
        return (
            not ctx.too_long
            and ctx.conversation.status == ConversationStatus.BOT
            and self.parse(ctx.text) is not None
        )

    def _offered(self, reply: StoredMessage) -> bool:
        return any(self.parse(b.value) is not None for b in reply.buttons)

    def _is_rating(self, message: StoredMessage) -> bool:
        return self.parse(message.text) is not None

    async def handle(self, ctx: Context) -> None:
        parsed = self.parse(ctx.text)
        if parsed is None:
            return
        rating, answering = parsed
        rated = await ctx.store.rate_reply(
            ctx.inbound, rating, self._offered, answering=answering, is_rating=self._is_rating
        )
        if rated is None:
            # Nothing to rate, or a typed thumb after someone else's word (a thank-you
            # for an agent's help): an ordinary message for the later handlers.
            return
        seq = rated.reply.seq
        if rated.previous != rating:  # a repeated click is no new rating
            message = ctx.message
            given = FeedbackGiven(message.channel, message.conversation_key, rating=rating,
                                  reply_seq=seq)  # fmt: skip
            await ctx.events.publish(given)
            ctx.logger.info("%s: reply seq=%d rated %s", ctx.describe(), seq, rating)
        if rating == "bad" and self.config.on_bad == "handoff":
            await request_handoff(ctx, f"customer rated reply seq={seq} bad", self.sorry)
        else:
            table = self.thanks if rating == "good" else self.sorry
            fallback = fallback_key(table, ctx.settings.bot.working_language)
            set_localized_reply(
                ctx, lambda language: pick(table, language, fallback=fallback), source="feedback"
            )
        raise StopPropagation


class FeedbackPlugin(Plugin[FeedbackConfig]):
    """The built-in ``feedback`` plugin (see the module docstring)."""

    Config = FeedbackConfig

    async def setup(self, registry: PluginRegistry) -> None:
        if self.config.on_bad == "handoff":
            warn_without_desk(registry, 'on_bad = "handoff" hands conversations over')
        registry.add_middleware(OfferRating(self.config))
        registry.add_handler(RatingHandler(self.config), group=FEEDBACK_GROUP)
