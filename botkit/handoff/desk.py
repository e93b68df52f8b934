"""How a conversation goes to a colleague, for every plugin that hands one over.

The hand-off plugin's ``/human``, an intent with ``action = "handoff"`` and a bad rating
with ``on_bad = "handoff"`` must all honour the same office hours and say the same
things. ``HandoffDesk`` holds that: it hands the conversation over (or, outside the
hours with ``outside = "bot"``, keeps it with the bot) and confirms in the customer's
language, with the return hint. The hand-off plugin puts its desk in every message's
``ctx.state`` (``DESK_KEY``); other plugins call ``request_handoff``, which uses it when
the hand-off plugin is enabled and otherwise hands over plainly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from botkit.events import utcnow
from botkit.handoff import texts
from botkit.handoff.config import HandoffConfig
from botkit.language.localized import fallback_key, pick, set_localized_reply
from botkit.pipeline import Context, Next

if TYPE_CHECKING:
    from botkit.plugins import PluginRegistry

__all__ = [
    "DESK_KEY",
    "HandoffDesk",
    "ProvideDesk",
    "confirm",
    "request_handoff",
    "warn_without_desk",
]

DESK_KEY = "handoff.desk"


def confirm(ctx: Context, table: Mapping[str, str], suffix: Mapping[str, str] | None,
            command: str, opens: Callable[[str], str] | None = None) -> None:  # fmt: skip
    """Reply from ``table`` (plus the ``suffix`` hint naming ``command``; ``{opens}``
    filled in by ``opens(language)``) in the customer's language (see
    ``set_localized_reply``)."""

    fallback = fallback_key(table, ctx.settings.bot.working_language)

    def text_in(language: str | None) -> tuple[str, str]:
        used, text = pick(table, language, fallback=fallback)
        if opens is not None:
            text = text.format(opens=opens(used))
        if suffix is not None and command:
            _, hint = pick(suffix, used)
            text = f"{text} {hint.format(command=command)}"
        return used, text

    set_localized_reply(ctx, text_in, source="handoff")


class HandoffDesk:
    """Hands conversations over under the hand-off plugin's settings."""

    # The time office hours are judged at (a test moves it).
    clock: Callable[[], datetime] = staticmethod(utcnow)

    def __init__(self, config: HandoffConfig) -> None:
        self.config = config
        self.replies = {**texts.HANDOFF_REPLIES, **config.replies}
        self.offline_replies = {**texts.OFFLINE_HANDOFF_REPLIES, **config.offline_replies}
        self.offline_bot_replies = {**texts.OFFLINE_BOT_REPLIES, **config.offline_replies}
        self.return_hints = {**texts.RETURN_HINTS, **config.return_hints}

    async def hand_off(
        self, ctx: Context, reason: str, *, replies: Mapping[str, str] | None = None
    ) -> bool:
        """Hand the conversation to a colleague and confirm (``replies``, else the
        plugin's texts); outside office hours say when the team is there.

        Returns:
            Whether it was handed over (False: outside the hours with
            ``outside = "bot"``, the bot keeps it and has said so).
        """
        hours, now, command = self.config.hours, self.clock(), self.config.return_command
        if hours is None or hours.is_open(now):
            await ctx.hand_off(reason)
            ctx.logger.info("%s: handed to a human (%s)", ctx.describe(), reason)
            confirm(ctx, replies or self.replies, self.return_hints, command)
            return True
        opens = hours.next_opening(now)

        def when(language: str) -> str:
            if opens is None:  # every day of the coming year is off
                return "?"
            return texts.opening_text(opens, language, hours, now)

        if hours.outside == "bot":
            ctx.logger.info("%s: asked for a human outside office hours (%s); the bot keeps "
                            "it", ctx.describe(), reason)  # fmt: skip
            confirm(ctx, self.offline_bot_replies, None, "", opens=when)
            return False
        await ctx.hand_off(f"{reason}, outside office hours")
        ctx.logger.info("%s: handed to a human outside office hours (%s)", ctx.describe(),
                        reason)  # fmt: skip
        confirm(ctx, self.offline_replies, self.return_hints, command, opens=when)
        return True


class ProvideDesk:
    """Middleware: puts the desk where other plugins' handlers find it."""

    def __init__(self, desk: HandoffDesk) -> None:
        self.desk = desk

    async def __call__(self, ctx: Context, next: Next) -> None:
        ctx.state[DESK_KEY] = self.desk
        await next()


async def request_handoff(
    ctx: Context, reason: str, replies: Mapping[str, str] | None = None
) -> bool:
    """Hand the conversation over from any plugin: through the hand-off plugin's desk
    (office hours, its texts, the return hint) when it is enabled, else plainly with
    ``replies`` (or the built-in confirmation). Returns whether it was handed over."""
    desk = ctx.state.get(DESK_KEY)
    if isinstance(desk, HandoffDesk):
        return await desk.hand_off(ctx, reason, replies=replies)
    await ctx.hand_off(reason)
    ctx.logger.info("%s: handed to a human (%s)", ctx.describe(), reason)
    confirm(ctx, replies or texts.HANDOFF_REPLIES, None, "")
    return True


def warn_without_desk(registry: PluginRegistry, what: str) -> None:
    """Log, at a plugin's setup, that ``what`` (its hand-offs) will run without the
    hand-off plugin when that is not enabled."""
    handoff = registry.settings.plugins.get("handoff")
    if handoff is None or handoff.get("enabled", True) is False:
        registry.logger.warning(
            "%s, but [plugins.handoff] is not enabled: no office hours apply, and customers "
            "cannot return with /bot",
            what,
        )
