"""The ``ReplyStream`` the bot hands a connector: backend deltas in, one stored reply out.

Errors of the reply's source are answered here, because a streamed reply is produced
only while the connector consumes it: an overloaded backend gets the busy reply, any
other failure the fallback reply (appended after what was already streamed). A reply
that comes out empty is replaced by the fallback reply too, since every platform refuses
empty messages.

Such a substitute left at its default is built in for the widget's languages
(``botkit.language.default_texts``): it goes out in the reply's language when it has
it, labelled so. Otherwise it is text in the working language (the operator's, or the
built-in one). In ``pivot`` mode that goes out translated when the translation
middleware's cache already has it in the reply's language
(``botkit.language.substitutes``: translated ahead of time, because asking the
translator now may block on the very overload being reported). Otherwise it goes out as
written, and a reply that is nothing but the substitute is labelled with the working
language. In ``pivot`` mode the working-language substitute is also recorded in
``working_text``, so agents and analytics see what the customer was told.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from botkit._backoff import doubling
from botkit._delivery_log import DeliveryLog, describe_error
from botkit.channel import ReplyStream
from botkit.errors import (
    BackendBusyError,
    ConnectorError,
    StoreError,
    UnknownConversationError,
)
from botkit.events import ANSWERED_LANGUAGE, REPLY_FAILED, Button, OutboundReply
from botkit.language.default_texts import BUSY_REPLIES, FALLBACK_REPLIES, default_text_in
from botkit.language.substitutes import STATE_KEY as SUBSTITUTES_KEY
from botkit.language.substitutes import SubstituteTexts
from botkit.language.tags import normalize_tag, same_language
from botkit.pipeline.chain import SOURCE_ERROR, STREAM_WRAPPERS
from botkit.pipeline.context import Context, Reply
from botkit.sanitize import sanitize_text
from botkit.store import DatabaseUnavailableError
from botkit.store.records import MessageStatus, StoredMessage

if TYPE_CHECKING:
    from botkit.metrics import ReplyOutcome

__all__ = ["SUPERSEDED", "LiveReplies", "ReplyDelivery", "deliver"]

_log = logging.getLogger("botkit.bot")


SUPERSEDED = "superseded: a human agent took the conversation over"
# Seconds between tries to store a reply the customer has seen while the database is
# unavailable: the first wait, doubled up to the second (a restart takes seconds, a
# failover tens; a try costs one refused connection).
STORE_RETRY_S = (0.25, 5.0)


class ReplyDelivery:
    """Implements ``botkit.channel.ReplyStream`` for one reply.

    Iterate for deltas; ``final()`` drains what is left, stores the reply once and
    returns it. ``abort()`` stops the source and stores what was produced as failed.
    ``supersede()`` (an agent took the conversation over) ends the reply after the text
    already out: generation stops, and the reply is stored ``failed`` with the reason,
    like a reply cut off by shutdown (so it never feeds the model's history), without
    quick replies, with ``superseded`` set on the ``OutboundReply``. Connectors
    mark what they showed of it as cut off and send nothing new for it. A reply
    superseded before its first words is not stored at all (its ``OutboundReply`` has no
    ``seq``): the customer saw nothing of it. Either way the customer's message is left
    as it is: it becomes the agent's only if they still have the conversation when the
    bot records that (``Context.keep_for_agent``, in ``Bot._reply_to``); an agent who
    gave it back meanwhile leaves it for the bot to answer again.
    """

    def __init__(self, ctx: Context, reply: Reply, log: DeliveryLog | None = None) -> None:
        self._ctx = ctx
        self._reply = reply
        self._log = log if log is not None else DeliveryLog()  # the bot's: LiveReplies.log
        self._source: AsyncIterator[str] = reply.deltas()
        self._parts: list[str] = []
        self._done = False
        self._has_text = False
        self._lock = asyncio.Lock()
        self._result: OutboundReply | None = None
        self._finished_inbound = False  # storing the reply also marked the message answered
        self._superseded = False
        self._cut = False  # superseded while the source still had text to give
        self._discarded = False  # superseded before it reached the connector
        self._substituted: ReplyOutcome | None = None  # "busy" / "fallback" took over
        self._source_error: str | None = None  # what the source failed with, if it did
        self.first_text_at: float | None = None  # time.monotonic() of the first words out
        self.stored: StoredMessage | None = None
        # The store found the conversation gone when the reply was to be stored: its
        # person was erased meanwhile (``botkit data forget``, the retention purge).
        self.erased: UnknownConversationError | None = None
        self.channel = ctx.message.channel
        self.conversation_key = ctx.message.conversation_key
        self.reply_to = dict(ctx.message.channel_ids)
        self.in_reply_to_seq: int | None = ctx.inbound.seq

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    def supersede(self) -> None:
        """End the reply at the next delta (see the class docstring)."""
        self._superseded = True

    @property
    def superseded(self) -> bool:
        """Whether ``supersede`` was called."""
        return self._superseded

    @property
    def conversation_status(self) -> str:
        """The conversation's status when the reply was composed (after any hand-off or
        return the reply itself made)."""
        return str(self._ctx.conversation.status)

    async def discard(self) -> None:
        """Drop a reply that was never handed to a connector (its source is closed)."""
        self._discarded = True
        await self._close_source()

    @property
    def outcome(self) -> ReplyOutcome:
        """How the reply ended (for metrics): ``superseded`` (an agent took over, cut
        or never sent), ``failed`` (stored failed: the channel refused it), ``busy`` /
        ``fallback`` (that reply replaced what the source could not give, or the
        pipeline gave it for a failure before the reply: a translator overloaded on the
        way in, a plugin's error), or ``sent``."""
        if self._cut or self._discarded:
            return "superseded"
        if self.stored is not None and self.stored.status == MessageStatus.FAILED:
            return "failed"
        if self._substituted is not None:
            return self._substituted
        source = self._reply.source
        return "busy" if source == "busy" else "fallback" if source == "fallback" else "sent"

    async def __anext__(self) -> str:
        while not self._done:
            if self._superseded:
                self._cut = True
                await self._close_source()
                break
            try:
                delta = await self._source.__anext__()
            except StopAsyncIteration:
                self._done = True
                if not self._has_text and not self._taken_over():
                    self._ctx.logger.warning("%s: empty reply replaced", self._ctx.describe())
                    self._source_error = f"reply source {self._reply.source!r} gave no text"
                    return self._substitute(
                        self._ctx.settings.bot.fallback_reply, FALLBACK_REPLIES, "fallback"
                    )
                break
            except BackendBusyError as exc:
                self._done = True
                self._source_error = describe_error(exc)
                # An overload fails every reply waiting at once: one line a minute, with
                # the backend's own reason (how many replies, how long it waited).
                self._log.busy(self._ctx.logger, self._ctx.describe(), exc)
                if self._taken_over():
                    break
                return self._substitute(self._ctx.settings.bot.busy_reply, BUSY_REPLIES, "busy")
            except Exception as exc:
                self._done = True
                self._source_error = describe_error(exc)
                # Throttled: a backend outage fails every message alike (the reply keeps
                # its own error in the database).
                self._log.source_failed(
                    self._ctx.logger,
                    self._ctx.describe(),
                    self._reply.source,
                    self._reply.metadata.get(STREAM_WRAPPERS),
                    exc,
                )
                if self._taken_over():
                    break
                return self._substitute(
                    self._ctx.settings.bot.fallback_reply, FALLBACK_REPLIES, "fallback"
                )
            if self._superseded:
                continue  # taken over while this piece was being made: it is not shown
            clean = sanitize_text(delta)
            if clean:
                return self._take(clean)
        raise StopAsyncIteration

    def _taken_over(self) -> bool:
        """Whether an agent took over: then no busy or fallback reply follows (the agent
        answers), and the reply ends as it is (cut)."""
        if self._superseded:
            self._cut = True
        return self._superseded

    def _take(self, delta: str) -> str:
        self._parts.append(delta)
        if not self._has_text and not delta.isspace():
            self._has_text = True
            self.first_text_at = time.monotonic()
        return delta

    def _substitute(self, configured: str, table: Mapping[str, str], kind: ReplyOutcome) -> str:
        """Append the configured text (``table``'s built-in one in the reply's language
        when it was not customized) in place of the rest of the reply."""
        self._substituted = kind
        reply, whole = self._reply, not self._has_text
        working = normalize_tag(self._ctx.settings.bot.working_language)
        text_in = default_text_in(configured, table, working)
        text = text_in(working)[1]
        target = reply.language
        shown = text
        if target is not None and not same_language(target, working):
            cache = self._ctx.state.get(SUBSTITUTES_KEY)
            pivot = cache if isinstance(cache, SubstituteTexts) else None  # pivot mode only
            used, built_in = text_in(target)
            if same_language(used, target):
                translated: str | None = built_in  # built in: no translator needed
            else:
                translated = None if pivot is None else pivot.lookup(target, text)  # never waits
            if translated is not None:
                shown = translated
            elif whole:
                reply.language = working  # what the customer gets is the configured text
            if pivot is not None:  # the working-language side of a translated reply
                before = reply.working_text
                reply.working_text = text if whole or not before else f"{before}\n\n{text}"
        return self._take(shown if whole else f"\n\n{shown}")

    @property
    def _buttons(self) -> tuple[Button, ...]:
        """The reply's quick replies, unless it was cut short or a notice took (some of)
        its place: they answered the whole text the reply was meant to have."""
        return () if self._cut or self._substituted is not None else self._reply.buttons

    @property
    def text(self) -> str:
        """Everything produced so far."""
        return "".join(self._parts)

    async def final(self) -> OutboundReply:
        """Finish the reply (consuming what is left), store it once and return it."""
        return await self._finish(None, None)

    @property
    def stored_reply(self) -> OutboundReply | None:
        """The reply once stored (by ``final()`` or ``abort()``), else None."""
        return self._result if self.stored is not None else None

    async def abort(self, error: str, *, answered: bool = True) -> OutboundReply:
        """Stop producing, store what was produced with status ``failed``.

        If the reply was already stored, its status is changed to ``failed`` instead.
        ``answered=False`` leaves the customer's message unanswered, so the next start
        answers it again (a reply cut off by shutdown): if storing the reply had already
        marked the message answered, that is undone in the same write.
        """
        if self._result is not None and self.stored is not None:
            reopen = not answered and self._finished_inbound
            # Kept as stored now: ``outcome`` (the metrics) reads the failed mark from it.
            self.stored = await self._ctx.store.fail_reply(
                self.stored.id, error, reopen_inbound_id=self._ctx.inbound.id if reopen else None
            )
            failed = self._result.metadata | {REPLY_FAILED: True}
            if reopen:  # the customer's message is no longer answered by this reply
                self._ctx.inbound_finished = self._finished_inbound = False
                failed.pop(ANSWERED_LANGUAGE, None)
            self._result = dataclasses.replace(self._result, metadata=failed)
            return self._result
        await self._close_source()
        return await self._finish(MessageStatus.FAILED, error, answered=answered)

    async def _close_source(self) -> None:
        self._done = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # the source is being abandoned anyway
                _log.debug("closing a reply source raised", exc_info=True)

    async def _finish(
        self, status: MessageStatus | None, error: str | None, *, answered: bool = True
    ) -> OutboundReply:
        """Drain, then store with ``status`` (None: ``sent``, or ``failed`` when an
        agent's takeover cut the reply short; then the write waits out a database
        outage)."""
        wait = status is None
        async with self._lock:
            if self._result is not None:
                return self._result
            while not self._done:
                async for _ in self:
                    pass
            if status is None:  # a reply cut short is stored failed, like a shutdown cut
                status, error = (
                    (MessageStatus.FAILED, SUPERSEDED) if self._cut else (MessageStatus.SENT, None)
                )
            reply, ctx = self._reply, self._ctx
            # The reply's transaction also records that the customer's message is done;
            # not for a reply an agent's takeover cut short: whose message it is then
            # is decided on the status where that is recorded (see the class docstring).
            finish = answered and not self._cut and ctx.inbound.status is MessageStatus.RECEIVED
            if self._cut and not self._has_text:
                # Cut before its first words: the customer saw nothing, nothing is stored
                # (an empty message would read as one).
                return self._record(None, False)
            # The model's own words (pivot mode) are its raw output, unlike the deltas
            # shown to the customer, which were cleaned one by one.
            working = None if reply.working_text is None else sanitize_text(reply.working_text)
            write = functools.partial(
                ctx.store.append_outbound,
                ctx.conversation.id,
                self.text,
                working_text=working,
                language=reply.language,
                in_reply_to_seq=self.in_reply_to_seq,
                status=status,
                buttons=self._buttons,
                error=error,
                finish=ctx.inbound_finish() if finish else None,
                source=self._substituted or reply.source,
                source_error=self._stored_source_error,
            )
            # final() waits for the database: the customer has seen the reply, so it is
            # stored once it can be (an abort, at shutdown or after the channel failed,
            # tries once and leaves the message to be answered again).
            stored = await self._store(write, finish, wait=wait)
            return self._record(stored, finish)

    async def _store(
        self, write: Callable[[], Awaitable[StoredMessage]], finish: bool, *, wait: bool
    ) -> StoredMessage:
        """Run ``write``; with ``wait``, again while the database is unavailable (see
        ``STORE_RETRY_S``) until it is stored or the task is cancelled."""
        delays = doubling(*STORE_RETRY_S)
        while True:
            attempt = asyncio.ensure_future(write())
            try:
                return await asyncio.shield(attempt)
            except UnknownConversationError as exc:
                self.erased = exc  # whatever the connector makes of it (see _deliver)
                raise
            except asyncio.CancelledError:
                # Shutdown cancelled us mid-write; the write still completes. Record its
                # outcome so abort() marks this reply failed instead of storing a copy
                # (a write that failed leaves nothing to mark).
                with contextlib.suppress(StoreError):
                    self._record(await attempt, finish)
                raise
            except DatabaseUnavailableError as exc:
                # Cut at its COMMIT, the reply may be stored already: a second copy would
                # show twice in the history, so that one is given up (see the docs).
                if not wait or exc.maybe_committed:
                    raise
                self._ctx.logger.debug(
                    "%s: reply waits to be stored: %s", self._ctx.describe(), exc
                )
            await asyncio.sleep(next(delays))

    @property
    def _stored_source_error(self) -> str | None:
        """The failure a busy or fallback reply stands for: the source's, when the
        delivery substituted it, else the pipeline's (``SOURCE_ERROR``)."""
        if self._substituted is not None:
            return self._source_error
        error = self._reply.metadata.get(SOURCE_ERROR)
        return error if isinstance(error, str) else None

    def _record(self, stored: StoredMessage | None, finished_inbound: bool) -> OutboundReply:
        ctx, reply = self._ctx, self._reply
        ctx.inbound_finished = ctx.inbound_finished or finished_inbound
        self._finished_inbound = finished_inbound
        self.stored = stored
        self._result = OutboundReply(
            channel=self.channel,
            conversation_key=self.conversation_key,
            text=self.text,
            buttons=self._buttons,
            reply_to=self.reply_to,
            in_reply_to_seq=self.in_reply_to_seq,
            seq=None if stored is None else stored.seq,
            language=reply.language,
            superseded=self._cut,
            # (Not the source's error: diagnostics, for the database, not the channel.)
            metadata={k: v for k, v in reply.metadata.items() if k != SOURCE_ERROR}
            # Deprecated mirror of ``superseded`` for connectors written before the
            # field (nothing in botkit reads it); not stored: replies' metadata is not.
            | ({"superseded": True} if self._cut else {})
            | ({REPLY_FAILED: True} if stored and stored.status == MessageStatus.FAILED else {})
            # Recorded with this reply: the language the customer's message was read in
            # (connectors that showed the message before it was read can say it now).
            | ({ANSWERED_LANGUAGE: ctx.inbound_language} if finished_inbound else {}),
            created_at=None if stored is None else stored.created_at,
        )
        return self._result


class LiveReplies:
    """The bot's replies being delivered, by conversation, so that an agent taking a
    conversation over stops the bot's reply to it (``supersede``)."""

    # Takeover times kept, newest last. Forgetting an old one only forgets that a reply
    # started before it should stop: replies take seconds, 10,000 takeovers far longer.
    MAX_TAKEOVERS = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._live: dict[int, set[ReplyDelivery]] = {}
        # When each conversation was last taken over: a reply that started before that
        # is superseded as soon as it reaches delivery.
        self._taken_at: OrderedDict[int, float] = OrderedDict()
        self._clock = clock
        # The bot's lines about failing reply sources, throttled across its replies.
        self.log = DeliveryLog()

    def now(self) -> float:
        """The time a reply starts, to compare with takeovers (``track``)."""
        return self._clock()

    def taken_since(self, conversation_id: int, started: float) -> bool:
        return self._taken_at.get(conversation_id, float("-inf")) >= started

    def supersede(self, conversation_id: int) -> None:
        """An agent took the conversation over: end the bot's replies to it."""
        self._taken_at[conversation_id] = self._clock()
        self._taken_at.move_to_end(conversation_id)
        while len(self._taken_at) > self.MAX_TAKEOVERS:
            self._taken_at.popitem(last=False)
        for delivery in self._live.get(conversation_id, ()):
            delivery.supersede()

    def deliveries(self) -> dict[int, tuple[ReplyDelivery, ...]]:
        """The replies being delivered now, by conversation id (a snapshot)."""
        return {cid: tuple(live) for cid, live in self._live.items()}

    @contextlib.contextmanager
    def track(
        self, conversation_id: int, delivery: ReplyDelivery, started: float
    ) -> Iterator[None]:
        """Register ``delivery`` while it runs; ``started`` is ``now()`` when its reply
        started (a takeover since supersedes it at once)."""
        if self.taken_since(conversation_id, started):
            delivery.supersede()
        live = self._live.setdefault(conversation_id, set())
        live.add(delivery)
        try:
            yield
        finally:
            live.discard(delivery)
            if not live:
                del self._live[conversation_id]


class _Sender(Protocol):
    async def send_stream(self, stream: ReplyStream) -> None: ...


async def deliver(
    ctx: Context,
    reply: Reply,
    connector: _Sender | None,
    live: LiveReplies | None = None,
    started: float = 0.0,
) -> ReplyDelivery:
    """Stream ``reply`` to ``connector`` and store it: ``sent`` when the connector
    returned, ``failed`` (with the reason) when it raised, there was no connector, the
    bot shut down mid-reply (then the cancellation propagates), or an agent took the
    conversation over (``live``: see ``LiveReplies``). Returns the finished delivery
    (its ``outcome`` and ``first_text_at``)."""
    delivery = ReplyDelivery(ctx, reply, None if live is None else live.log)
    if live is not None and live.taken_since(ctx.conversation.id, started):
        # Taken over while the reply was being prepared: nothing of it goes out.
        await delivery.discard()
        ctx.logger.info("%s: reply not sent, an agent took the conversation", ctx.describe())
        return delivery
    tracking = (
        live.track(ctx.conversation.id, delivery, started)
        if live is not None
        else contextlib.nullcontext()
    )
    with tracking:
        await _deliver(ctx, delivery, connector)
    return delivery


async def _deliver(ctx: Context, delivery: ReplyDelivery, connector: _Sender | None) -> None:
    try:
        if connector is None:
            raise ConnectorError(f"no connector for channel {ctx.message.channel!r}")
        await connector.send_stream(delivery)
    except asyncio.CancelledError:
        # Shutdown: the cancellation must go on even when the database is away too (the
        # message stays unanswered either way, for the next process to answer).
        with contextlib.suppress(StoreError):
            await delivery.abort("interrupted by shutdown", answered=False)
        raise
    except Exception as exc:
        if delivery.erased is not None:
            # final() found the conversation erased and the connector gave up (as it
            # raised, or wrapped): not the channel's failure, and there is nothing left
            # to store a failed reply in. The caller says so (``ReplyFlow.reply_to``).
            raise delivery.erased from None
        if not isinstance(exc, ConnectorError):
            _log.error("connector %r raised while sending", ctx.message.channel, exc_info=exc)
        _log.warning("%s: delivery failed: %s", ctx.describe(), exc)
        await delivery.abort(f"{type(exc).__name__}: {exc}")
        return
    await delivery.final()
