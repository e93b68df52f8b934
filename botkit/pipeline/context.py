"""What middleware and handlers work on: one inbound message and the reply being formed."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botkit.backends.protocol import ChatMessage, GenerationBackend, finish_reason
from botkit.event_bus import EventBus
from botkit.events import Button, ConversationClosed, HandoffRequested, InboundMessage
from botkit.store.records import (
    ContactRecord,
    ConversationRecord,
    ConversationStatus,
    InboundFinish,
    StoredMessage,
)

if TYPE_CHECKING:
    from botkit.config.settings import Settings
    from botkit.store import ConversationStore

__all__ = ["Context", "Reply"]

_LOG = logging.getLogger("botkit.pipeline")
_HUMAN = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)
# Compare-and-sets tried by ``keep_for_agent`` before it takes a human's status as
# settled (each lost one means the conversation changed hands in between).
_KEEP_TRIES = 3


@dataclass(eq=False)
class Reply:
    """The answer the pipeline produced: a complete text or a stream of text deltas.

    Middleware may replace ``stream`` with a wrapper (e.g. to translate the reply) after
    ``next()`` returns: the stream is consumed only when the reply is delivered.

    Attributes:
        text: a complete reply (handlers that know their answer).
        stream: text deltas (the generation backend).
        buttons: quick replies shown with the reply.
        language: language of the text the customer sees.
        working_text: the reply in the working language when ``text``/``stream`` is a
            translation of it; a stream wrapper sets it once the stream is done.
        source: who produced it ("handler", "backend", "fallback"...), for logs.
    """

    text: str | None = None
    stream: AsyncIterator[str] | None = None
    buttons: tuple[Button, ...] = ()
    language: str | None = None
    working_text: str | None = None
    source: str = "handler"
    metadata: dict[str, Any] = field(default_factory=dict)
    # The stream as the reply was made with it, before middleware wrapped ``stream``
    # (translation): the backend's, which knows why the generation ended.
    _origin: AsyncIterator[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._origin = self.stream

    @property
    def finish_reason(self) -> str | None:
        """Why the generation behind the reply's stream ended, once the stream has been
        read to its end: ``"length"`` (``CUT_AT_LIMIT``) when the backend cut it at
        ``max_new_tokens``. None for a text reply, and for a stream that does not say
        (``botkit.backends.protocol.ReportsFinish``)."""
        return finish_reason(self._origin)

    async def deltas(self) -> AsyncIterator[str]:
        """The reply as deltas, whichever form it has.

        Closing this iterator early closes ``stream`` too, so the source (a backend
        request, a translating wrapper) releases what it holds.
        """
        if self.stream is not None:
            stream = self.stream
            try:
                async for delta in stream:
                    yield delta
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
        elif self.text is not None:
            yield self.text


@dataclass(eq=False)
class Context:
    """One inbound message on its way through the pipeline.

    Built by the bot after the message is stored. Middleware and handlers read the
    message and the conversation, may fill ``language``/``working_text``/``history`` and
    set ``reply``; ``state`` is free space for plugins (key by plugin name).

    Attributes:
        message: the event as the connector delivered it (raw text).
        text: the sanitized text, as stored.
        conversation: the stored conversation (status, language).
        inbound: the stored inbound message (``seq``, ``id``).
        contact: the stored contact as of the message's intake (preferred language),
            when the bot has it; ``None`` means read it from the store if needed.
        too_long: the text is over ``bot.max_message_chars`` (stored, not processed).
        language: the customer's language for this message, which replies are given
            in (the language middleware fills it: the detected language, or the
            conversation's when the message is too short or unclear to tell).
        working_text: ``text`` in the working language when it had to be translated.
        history: earlier turns for the model, oldest first (the load-conversation
            middleware fills it; the current message is not included).
        instructions: extra system instructions for this message only (e.g. which
            language to answer in), added after the configured system prompt.
        frame_text: botkit's own sentences in ``instructions`` that frame material for
            the model (the knowledge plugin's note and instruction around the passages):
            a reply that merely copies them is not sent (``botkit.pipeline.frame_guard``).
            Not the material itself, which a reply may quote, nor the operator's system
            prompt, which may tell the model what to say word for word.
        stop: where the model's reply ends (the marks around the material): sent to
            the backend as stop strings (the first ``generation.MAX_STOP``).
        reply: the answer so far; ``None`` means nobody answered yet.
        quick_replies_stay: whether the channel keeps earlier messages' quick replies
            clickable (Telegram, Slack), so a quick reply may answer an older message;
            False where only the newest message's are shown (the web widget).
        superseded: a human has the conversation now, taken over while this message
            was processed (``hand_off`` or ``close_conversation`` found it so): the
            takeover stands and the bot does not send ``reply``, as with any reply a
            takeover stops before it reaches the channel.
        unreadable_reply: the channel's answer, as (text, language), to a message the
            bot cannot read (a Telegram photo or location, whose text is for a human
            agent); None for any other. Such a message is treated like one without
            text (``SanitizeMiddleware``), answered with this instead of
            ``bot.empty_reply``.
    """

    message: InboundMessage
    text: str
    conversation: ConversationRecord
    inbound: StoredMessage
    settings: Settings
    store: ConversationStore
    backend: GenerationBackend
    too_long: bool = False
    new_conversation: bool = False
    contact: ContactRecord | None = None
    language: str | None = None
    working_text: str | None = None
    history: list[ChatMessage] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    frame_text: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    reply: Reply | None = None
    quick_replies_stay: bool = True
    state: dict[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: _LOG)
    events: EventBus = field(default_factory=EventBus)
    superseded: bool = False
    unreadable_reply: tuple[str, str] | None = None
    # When ``conversation`` was read (time.monotonic): the gate reads it again only if
    # the steps before it took a while (see ``CurrentConversationMiddleware``).
    conversation_read_at: float = field(default_factory=time.monotonic)
    # What the pipeline learned about the inbound message (language, working-language
    # text); stored in one write when the bot has finished with the message.
    inbound_language: str | None = None
    inbound_working_text: str | None = None
    inbound_finished: bool = False

    @property
    def model_text(self) -> str:
        """The text the model should see: the working-language text if there is one."""
        return self.text if self.working_text is None else self.working_text

    def set_reply(
        self, text: str, *, buttons: tuple[Button, ...] = (), source: str = "handler"
    ) -> Reply:
        """Answer with a complete text."""
        self.reply = Reply(text=text, buttons=buttons, language=self.language, source=source)
        return self.reply

    def set_stream(self, stream: AsyncIterator[str], *, source: str = "backend") -> Reply:
        """Answer with a stream of text deltas (consumed when the reply is delivered)."""
        self.reply = Reply(stream=stream, language=self.language, source=source)
        return self.reply

    def inbound_finish(self) -> InboundFinish:
        """What the store records when the bot is done with the inbound message."""
        return InboundFinish(self.inbound, self.inbound_language, self.inbound_working_text)

    async def keep_for_agent(self) -> bool:
        """Record that the inbound message is the human agent's (the bot is done with it
        without a reply), only while a human has the conversation or it waits for one.

        This write is where a message becomes the agent's: the status that routed it
        here may be a moment old (``CurrentConversationMiddleware``), and an agent may
        give the conversation back to the bot at any point until then. A release
        committed first wins: nothing is recorded, ``conversation`` is read again, and
        the caller lets the bot answer (the agent has left; the customer still needs an
        answer). One committed after it leaves the message with the agent, who had it.

        Returns:
            Whether the message is the agent's (False: ``conversation`` is now the one
            read again, in another status).
        """
        seen = self.conversation.status
        for _ in range(_KEEP_TRIES):
            if await self.store.finish_inbound(self.inbound_finish(), only_while=_HUMAN):
                self.inbound_finished = True
                return True
            self.conversation = await self.store.conversation_by_id(self.conversation.id)
            self.conversation_read_at = time.monotonic()
            if self.conversation.status not in _HUMAN:
                self.logger.info(
                    "%s: conversation went from %s to %s before this message reached the "
                    "agent; the bot has it",
                    self.describe(), seen, self.conversation.status,
                )  # fmt: skip
                return False
        # With a human again at every look: given back and taken again in between (or
        # the message was erased). The agent has it; the bot records it as done.
        return True

    async def hand_off(self, reason: str = "") -> bool:
        """Hand the conversation to a human: the bot stops answering it (status
        ``waiting_human``) and ``HandoffRequested`` is published for the agents' side.

        Only from the status this message last saw (see ``superseded``).

        Returns:
            Whether it was handed over (False: an agent took it over meanwhile).
        """
        if not await self._change_status(ConversationStatus.WAITING_HUMAN):
            return False
        await self.events.publish(
            HandoffRequested(self.message.channel, self.message.conversation_key, reason=reason)
        )
        return True

    async def close_conversation(self, reason: str = "") -> bool:
        """Close the conversation and publish ``ConversationClosed``.

        Only from the status this message last saw (see ``superseded``).

        Returns:
            Whether it was closed (False: an agent took it over meanwhile).
        """
        if not await self._change_status(ConversationStatus.CLOSED):
            return False
        await self.events.publish(
            ConversationClosed(self.message.channel, self.message.conversation_key, reason=reason)
        )
        return True

    async def _change_status(self, status: ConversationStatus) -> bool:
        """Compare-and-set from ``conversation.status``: an agent who took the
        conversation over while this message was processed keeps it, and the reply that
        would have gone with the change is superseded like any reply a takeover stops."""
        seen = self.conversation.status
        changed = await self.store.change_conversation_status(
            self.conversation.id, status, only_from=(seen,)
        )
        if changed is not None:
            self.conversation = changed
            return True
        self.conversation = await self.store.conversation_by_id(self.conversation.id)
        now = self.conversation.status
        self.superseded = self.superseded or now in _HUMAN
        self.logger.info(
            "%s: conversation went from %s to %s while this message was processed; "
            "not changed to %s",
            self.describe(), seen, now, status,
        )  # fmt: skip
        return False

    def describe(self) -> str:
        """Short identification for log lines (no customer text)."""
        return f"{self.message.channel}:{self.conversation.id} seq={self.inbound.seq}"
