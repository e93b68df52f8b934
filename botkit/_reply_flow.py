"""One stored message's reply: the pipeline, the delivery to the channel, and what is
recorded about the message after it (for ``Bot``, run by ``ReplyTasks``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from botkit._delivery import LiveReplies, deliver
from botkit.backends.protocol import CUT_AT_LIMIT, GenerationBackend
from botkit.config.settings import Settings
from botkit.connector import Connector
from botkit.errors import DatabaseUnavailableError, StoreError, UnknownConversationError
from botkit.event_bus import EventBus
from botkit.events import InboundMessage
from botkit.metrics import BotMetrics, ReplyOutcome
from botkit.pipeline import Context, Pipeline, Reply
from botkit.pipeline.middleware.rate_limit import RATE_LIMITED
from botkit.store import ConversationStore
from botkit.store.records import IntakeResult, MessageStatus

__all__ = ["ReplyFlow"]

_log = logging.getLogger("botkit.bot")


@dataclasses.dataclass(frozen=True, slots=True)
class ReplyFlow:
    """What a reply needs of the started bot.

    Attributes:
        connectors: the bot's connectors by channel (the bot's own dict: attached ones
            show up).
        live: the replies being delivered (an agent's takeover ends them).
    """

    settings: Settings
    store: ConversationStore
    backend: GenerationBackend
    pipeline: Pipeline
    connectors: Mapping[str, Connector[Any]]
    live: LiveReplies
    events: EventBus
    metrics: BotMetrics

    async def reply_to(
        self,
        message: InboundMessage,
        intake: IntakeResult,
        too_long: bool,
        queued: bool,
        turn_at: float,
        read_at: float,
    ) -> None:
        """Run the pipeline for one stored message, deliver its reply and record that the
        bot is done with the message (called by ``ReplyTasks`` under the conversation's
        lock).

        The conversation is read again when the status the intake read may be stale:
        the message waited behind other replies of its conversation (they may have
        handed it to a human, back to the bot, or changed its language), or an agent
        took it over in this process since that read (``read_at``; a look at
        ``LiveReplies``, no read otherwise).

        A reply an agent's takeover stopped (cut short, or never sent) leaves the
        message to the agent only if they still have the conversation where that is
        recorded (``Context.keep_for_agent``, a compare-and-set): given back to the bot
        before then, the message is answered again from the start of the pipeline. The
        customer never ends up with no answer, nor with two (a cut reply is stored
        ``failed``: not an answer).
        """
        conversation_id = intake.conversation.id
        # Before the status in ``intake.conversation`` was read: a takeover from then on
        # supersedes this reply (at the latest when it reaches delivery).
        started = read_at
        if queued or self.live.taken_since(conversation_id, read_at):
            started = self.live.now()
            try:
                conversation = await self.store.conversation_by_id(conversation_id)
            except UnknownConversationError:
                _log_erased(conversation_id)  # while the message waited for its turn
                return
            intake = dataclasses.replace(intake, conversation=conversation)
        ctx = self._context(message, intake, too_long)
        while True:
            stopped = False
            try:
                stopped = await self._answer(ctx, started, turn_at)
            except asyncio.CancelledError:
                raise  # stays unanswered: answered again on the next start
            except DatabaseUnavailableError as exc:
                if not exc.maybe_committed:
                    # ``ReplyTasks`` answers it again once the database is back; the
                    # store has logged the outage (once for all the replies that wait).
                    raise
                # Cut at its commit: the reply may be stored, and answering again could
                # answer twice (see docs/operations.md). Recorded as done below.
                _log.warning("conversation %s: reply perhaps not stored: %s", conversation_id, exc)
            except UnknownConversationError:
                if await self._erased(conversation_id):
                    # Expected (docs/operations.md, "Customers' data"): nothing is left
                    # to record about the message either.
                    _log_erased(conversation_id)
                    return
                _log.exception("conversation %s: reply failed", conversation_id)
            except Exception:
                _log.exception("conversation %s: reply failed", conversation_id)
            if intake.message.status is not MessageStatus.RECEIVED or ctx.inbound_finished:
                return
            if not stopped:
                # Usually recorded with the reply, in its transaction; here when no reply
                # was stored (none due, or the pipeline failed).
                await self.store.finish_inbound(ctx.inbound_finish())
                return
            started = self.live.now()  # before keep_for_agent reads the status again
            if await ctx.keep_for_agent():
                if not ctx.inbound_finished:  # with a human at every look: theirs anyway
                    await self.store.finish_inbound(ctx.inbound_finish())
                return
            # Taken over and given back before the message became the agent's: nobody
            # has answered it. Each round needs another takeover, so this ends.
            ctx.logger.info("%s: answered again after the agent gave it back", ctx.describe())
            intake = dataclasses.replace(intake, conversation=ctx.conversation)
            ctx = self._context(message, intake, too_long)

    async def _erased(self, conversation_id: int) -> bool:
        """Whether the reply's own conversation is gone (``botkit data forget``, or the
        retention purge, erased it meanwhile), rather than some other conversation a
        step looked up."""
        try:
            await self.store.conversation_by_id(conversation_id)
        except UnknownConversationError:
            return True
        except StoreError:  # cannot tell: reported as the failure it was
            return False
        return False

    def _context(self, message: InboundMessage, intake: IntakeResult, too_long: bool) -> Context:
        connector = self.connectors.get(message.channel)
        # The channel's answer to a message the bot cannot read (the Telegram connector
        # has one), given unless a human has the conversation (see Context). No
        # connector for the channel: the defaults of ``Connector``.
        unreadable = None if connector is None else connector.unreadable_reply(message)
        return Context(
            message=message,
            text=intake.message.text,
            conversation=intake.conversation,
            inbound=intake.message,
            settings=self.settings,
            store=self.store,
            backend=self.backend,
            too_long=too_long,
            new_conversation=intake.new_conversation,
            contact=intake.contact,
            events=self.events,
            quick_replies_stay=(
                Connector.earlier_quick_replies_stay
                if connector is None
                else connector.earlier_quick_replies_stay
            ),
            unreadable_reply=unreadable,
        )

    async def _answer(self, ctx: Context, started: float, turn_at: float) -> bool:
        """Run the pipeline and deliver its reply. Returns whether an agent's takeover
        stopped the reply (cut short, or never sent), leaving the message unrecorded
        for ``_reply_to`` to give to the agent.

        Raises:
            DatabaseUnavailableError: the database is away; ``maybe_committed`` only when
                the reply itself may be stored.
        """
        try:
            await self.pipeline.run(ctx)
        except DatabaseUnavailableError as exc:
            if not exc.maybe_committed:
                raise
            # A step's write cut at its commit: no reply is stored before delivery, so
            # the message is answered again from the start, not left unanswered.
            raise DatabaseUnavailableError(str(exc)) from exc
        if ctx.superseded and ctx.reply is not None:
            # The pipeline found the conversation taken over (its hand-off or close lost
            # to the takeover, which a peer may have made): the reply ends as one the
            # takeover stops before it reaches the channel (not sent, not stored).
            self.live.supersede(ctx.conversation.id)
        channel = ctx.message.channel
        if ctx.state.get(RATE_LIMITED):
            self.metrics.rate_limited.labels(channel).inc()
        connector = self.connectors.get(channel)
        if ctx.reply is None:
            if connector is not None:  # a channel waiting for each answer stops waiting
                await connector.no_reply(ctx.message)
            _log_reply_end("no reply", None, turn_at)
            return ctx.superseded
        try:
            delivery = await deliver(ctx, ctx.reply, connector, self.live, started)
        except asyncio.CancelledError:
            raise  # shutdown: answered again by the next process, counted there
        except Exception as exc:
            # (An erased conversation is what deliver() raises only for the reply's own:
            # its final() found it gone.)
            outcome: ReplyOutcome = (
                "erased" if isinstance(exc, UnknownConversationError) else "error"
            )
            self.metrics.reply(
                channel, outcome, first_text_seconds=None,
                total_seconds=time.monotonic() - turn_at,
            )  # fmt: skip
            _log_reply_end(outcome, None, turn_at)
            self._count_cut(channel, ctx.reply)
            raise
        first = delivery.first_text_at
        self.metrics.reply(
            channel,
            delivery.outcome,
            first_text_seconds=None if first is None else first - turn_at,
            total_seconds=time.monotonic() - turn_at,
        )
        _log_reply_end(delivery.outcome, first, turn_at)
        self._count_cut(channel, ctx.reply)
        return delivery.outcome == "superseded"

    def _count_cut(self, channel: str, reply: Reply) -> None:
        """Count a reply the backend cut at its token limit (its stream is read to the
        end by now), whatever the customer then got: the cut text, or the fallback reply
        when the cap left no text (a model that spent it all reasoning). Either way the
        cap is what to raise."""
        if reply.finish_reason == CUT_AT_LIMIT:
            self.metrics.replies_cut.labels(channel).inc()


def _log_reply_end(outcome: str, first_text_at: float | None, turn_at: float) -> None:
    """One DEBUG line when a reply ends (the message's identity is the task's, see
    ``botkit.log_context``): the outcome, and the seconds from the message's turn to the
    first text the customer saw and to the end, as the reply metrics count them."""
    if not _log.isEnabledFor(logging.DEBUG):
        return
    now = time.monotonic()
    first = "none" if first_text_at is None else f"{first_text_at - turn_at:.3f} s"
    _log.debug("reply ended: %s; first text %s, total %.3f s", outcome, first, now - turn_at)


def _log_erased(conversation_id: int) -> None:
    # One line, no traceback: the person's data was erased on request while the bot
    # was answering them, and the reply goes with it.
    _log.info(
        "conversation %s was erased while its reply was being written; the reply is dropped",
        conversation_id,
    )
