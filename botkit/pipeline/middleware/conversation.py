"""Decide whether the bot answers, on the conversation as it is now, and load its recent
history for the model, bounded by turns and tokens.

The conversation is read again before that decision (``CurrentConversationMiddleware``,
one read by id): detecting and translating the message may take seconds, during which
an agent may take the conversation over or give it back. Deciding on the status read
when the message was stored would leave a message sent just before a release
unanswered (and recorded as answered), and answer one sent just before a takeover.

A conversation that a human is handling is not answered by the bot: the chain stops
here without a reply; the message is stored for the agent. It becomes theirs where the
bot records that it is done with it (``Context.keep_for_agent``), a compare-and-set on
the status in that one write: the status read here may be up to ``FRESH_FOR_S`` old, or
the agent may give the conversation back between this read and that write. A release
committed first makes the gate decide again, and the bot answers the message (the
agent has left; someone must answer); one committed after it leaves the message with
the agent, who had it before they gave the conversation back. A closed conversation is
reopened by the customer's next message (when it is stored, or here if it was closed
while the message waited), so it is answered again.

The history is what the model should read of the conversation (``botkit.pipeline.turns``:
a human agent's messages labelled as theirs, botkit's fixed texts and chat commands left
out), bounded by ``history_turns``, by ``history_token_budget`` and by what the
backend can take (``botkit.pipeline.context_window``: a local engine's context less the
system prompt, the current message and the reply's room), dropping the oldest turns
first, so a long conversation keeps being answered on a small context.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from botkit.backends.protocol import ChatMessage
from botkit.config.settings import BotSettings
from botkit.errors import BackendError
from botkit.events import Direction
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context
from botkit.pipeline.context_window import fit_history, mark_fitted, off_loop, system_text
from botkit.pipeline.turns import model_turn
from botkit.store import approx_tokens
from botkit.store.records import ConversationStatus, MessageStatus, StoredMessage

__all__ = ["CurrentConversationMiddleware", "LoadConversationMiddleware"]

# Inbound messages that were refused (too long) and replies the customer never received
# are not part of the conversation as the customer saw it.
_SKIP = {MessageStatus.REJECTED, MessageStatus.FAILED}
_HUMAN = frozenset({ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN})
# Extra rows read to make up for messages stored after the one being answered.
_LOOKAHEAD = 8


def _before(message: StoredMessage, current_seq: int) -> bool:
    # Replies are produced in message order, so every stored reply answers an earlier
    # message, even when it was stored after the current one (a higher seq).
    return message.direction == Direction.OUTBOUND or message.seq < current_seq


def _turn_order(message: StoredMessage) -> float:
    """A reply sits right after the message it answers, not where its seq puts it."""
    if message.direction == Direction.OUTBOUND and message.in_reply_to_seq is not None:
        return message.in_reply_to_seq + 0.5
    return float(message.seq)


# A status read this recently is taken as current. A read is a database round trip that
# cost a third of the core's throughput when made for every message; without slow
# steps (translation, a busy detector) the status is a millisecond old here. A takeover
# that close is no different from one just after the gate; a release that close is
# caught where the message would become the agent's (``Context.keep_for_agent``).
FRESH_FOR_S = 0.05


class CurrentConversationMiddleware:
    """Reads ``ctx.conversation`` again, so that who answers is decided on its status now:
    after a translation (a model or a service: the slow step), or when it was read
    ``FRESH_FOR_S`` ago or more.

    It runs right before the plugins' early middleware and the gate
    (``LoadConversationMiddleware``), after the slow language steps.
    """

    async def __call__(self, ctx: Context, next: Next) -> None:
        translated = ctx.working_text is not None
        if translated or time.monotonic() - ctx.conversation_read_at >= FRESH_FOR_S:
            ctx.conversation = await ctx.store.conversation_by_id(ctx.conversation.id)
            ctx.conversation_read_at = time.monotonic()
        await next()


class LoadConversationMiddleware:
    """Fills ``ctx.history`` (oldest first, without the current message)."""

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: Context, next: Next) -> None:
        if not await self._bot_answers(ctx):
            return
        turns = self.settings.history_turns
        # Messages stored after this one (the customer kept typing while we answered
        # earlier ones) are not history for this reply; read a few extra rows so the
        # limit still yields `turns` earlier messages, then apply the token budget here.
        stored = await ctx.store.history(
            ctx.conversation.id,
            max_turns=turns + _LOOKAHEAD if turns else 0,
            token_budget=sys.maxsize,
            through=ctx.inbound,
        )
        earlier = sorted(
            (m for m in stored if _before(m, ctx.inbound.seq) and m.status not in _SKIP),
            key=_turn_order,
        )
        system = system_text(ctx, self.settings)
        current = ChatMessage("user", ctx.model_text)
        # One call for all the counting (a local engine's tokenizer: off the event loop).
        picked, fit = await off_loop(
            ctx.backend,
            _pick_and_fit,
            ctx.backend,
            earlier[-turns:] if turns else [],
            self.settings.history_token_budget,
            system,
            current,
        )
        ctx.history = self._settle(ctx, system, picked, fit)
        await next()

    async def _bot_answers(self, ctx: Context) -> bool:
        """Whether the bot answers the message, on ``ctx.conversation``'s status."""
        status = ctx.conversation.status
        if status == ConversationStatus.CLOSED:
            # Closed by the reply to an earlier message while this one waited its turn:
            # had it come a moment later, storing it would have reopened the conversation.
            reopened = await ctx.store.change_conversation_status(
                ctx.conversation.id, ConversationStatus.BOT, only_from=(ConversationStatus.CLOSED,)
            )
            ctx.conversation = reopened or await ctx.store.conversation_by_id(ctx.conversation.id)
            status = ctx.conversation.status
        if status == ConversationStatus.BOT:
            return True
        if status in _HUMAN and not await ctx.keep_for_agent():
            # Given back to the bot before the message became the agent's (recording
            # that is a compare-and-set, in the write the message needed anyway): the
            # bot answers it, on the status as it is now.
            return await self._bot_answers(ctx)
        ctx.logger.info("%s: conversation is %s; the bot does not answer", ctx.describe(), status)
        return False

    def fit(self, ctx: Context, history: list[ChatMessage]) -> list[ChatMessage]:
        """The newest turns of ``history`` that fit in the backend's context with the
        system prompt and the current message (``[]`` when those alone do not: the
        generation step then answers that the message is too long).

        Blocking: it counts tokens with the backend's tokenizer and, with the local
        engine, waits for its counting thread (a long prompt: hundreds of milliseconds,
        up to the 2 s render timeout). From async code, call it through
        ``botkit.pipeline.context_window.off_loop`` as the middleware itself does.
        """
        system = system_text(ctx, self.settings)
        current = ChatMessage("user", ctx.model_text)
        return self._settle(ctx, system, history, _try_fit(ctx.backend, system, history, current))

    def _settle(
        self, ctx: Context, system: str, history: list[ChatMessage], fit: _Fit
    ) -> list[ChatMessage]:
        """``ctx.history`` from ``_try_fit``'s outcome for ``history``."""
        if isinstance(fit, BackendError):
            # Not this step's to report: generating would fail the same way, and a
            # handler (an intent, a hand-off) may still answer without the model.
            ctx.logger.debug("%s: history not fitted to the context: %s", ctx.describe(), fit)
            return history
        if fit is None:
            return []
        if not history:
            return history
        mark_fitted(ctx, system, fit)
        if len(fit) < len(history):
            ctx.logger.debug(
                "%s: %d of %d history messages fit the model's context",
                ctx.describe(),
                len(fit),
                len(history),
            )
        return fit


# What fitting a history came to: the turns kept, None when the current message does
# not fit alone, or the backend's error (it could not count the prompt).
_Fit = list[ChatMessage] | None | BackendError


def _try_fit(
    backend: object, system: str, history: list[ChatMessage], current: ChatMessage
) -> _Fit:
    if not history:
        return history
    try:
        return fit_history(backend, system, history, current)
    except BackendError as exc:
        return exc


def _pick_and_fit(
    backend: object,
    recent: list[StoredMessage],
    budget: int,
    system: str,
    current: ChatMessage,
) -> tuple[list[ChatMessage], _Fit]:
    """The newest of ``recent`` within ``budget`` tokens, and what fitting them to the
    backend's context came to (``_try_fit``)."""
    counter: Callable[[str], int] = getattr(backend, "count_tokens", approx_tokens)
    picked: list[ChatMessage] = []
    for m in reversed(recent):
        turn = model_turn(m)  # an agent's words labelled, botkit's fixed texts left out
        if turn is None:
            continue
        budget -= counter(turn.content)
        if budget < 0:
            break
        picked.append(turn)
    picked.reverse()
    return picked, _try_fit(backend, system, picked, current)
