"""What a connector sees of the core, and what the core hands a connector to deliver.

Connectors depend on these protocols only (never on ``Bot`` itself), so a connector can be
driven in tests by any object that implements ``CoreHandle``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from botkit.events import Attachment, Button, Direction, InboundMessage, OutboundReply

__all__ = [
    "CoreHandle",
    "FileSource",
    "HistoryItem",
    "IntakeReceipt",
    "KeptFile",
    "KeptFiles",
    "ReplyStream",
    "WatchedConversations",
    "best_effort",
]


@dataclass(frozen=True, slots=True)
class IntakeReceipt:
    """Answer of ``CoreHandle.submit``: the message is durably stored (or was already).

    ``duplicate`` is True when the channel's idempotency key had been seen before; the
    message is then neither stored nor answered again. ``seq`` is the stored sequence
    number of the (original) message within its conversation. ``message`` is that stored
    message as a channel may show it (its text sanitized as stored), when the core says;
    a channel echoing the message shows this, never the raw text it received.
    """

    conversation_id: int
    seq: int
    duplicate: bool
    message: HistoryItem | None = None


@dataclass(frozen=True, slots=True)
class KeptFile:
    """Answer of ``CoreHandle.keep_file``: the file as kept (for a retried upload, the
    first one's name, type and size: the bytes kept are the first one's)."""

    ref: str  # its Attachment.ref
    name: str
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class KeptFiles:
    """Answer of ``CoreHandle.kept_files``: what a conversation holds before an upload."""

    count: int  # files kept in the conversation
    same: KeptFile | None  # the one under the upload's client id, if kept already


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One stored message as a channel may show it (e.g. to a reconnecting widget)."""

    seq: int
    direction: Direction
    text: str
    created_at: datetime
    language: str | None = None
    status: str = "ok"
    # The channel's delivery id of an inbound message (lets a client match its own
    # messages in a replayed history, e.g. the widget's client message id).
    idempotency_key: str | None = None
    in_reply_to_seq: int | None = None  # replies: the seq of the message answered
    buttons: tuple[Button, ...] = ()  # quick replies sent with an outbound message
    agent: str | None = None  # a human agent's message: the name they gave ("" for none)
    attachments: tuple[Attachment, ...] = ()  # files an inbound message came with


@runtime_checkable
class CoreHandle(Protocol):
    """The core as a connector uses it.

    ``submit`` sanitizes and stores the message idempotently and schedules the reply in the
    background, then returns quickly: a connector acknowledges the platform right after it
    returns, before any slow work. Raises ``MessageRejectedError`` only for messages that
    cannot be stored at all (``NotAcceptingError``, a subclass, while the bot takes none:
    worth sending again later); over-long messages are stored and answered with a clear
    reply.
    """

    async def submit(self, message: InboundMessage) -> IntakeReceipt: ...

    async def submit_or_keep(
        self,
        message: InboundMessage,
        *,
        existing_conversation_only: bool = False,
        agent_name: str | None = None,
    ) -> IntakeReceipt | None:
        """``submit`` for a channel that cannot hold a message itself: while the database
        is unavailable the message is kept on local disk and stored (then answered) once
        it answers. None: kept, stored as an agent's, or (``existing_conversation_only``)
        its conversation is not stored, so it is not for the bot. Acknowledge the
        platform either way.

        ``agent_name``: the author is one of the channel's human agents (a reply in a
        customer's thread): stored as theirs when it is an agent's message there (see
        ``record_agent_message``), else as a customer's."""
        ...

    async def history(
        self, channel: str, conversation_key: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryItem]: ...

    async def last_seq(self, channel: str, conversation_key: str) -> int:
        """The highest stored ``seq`` of a conversation (0 when it has none)."""
        ...

    async def ready(self) -> bool: ...

    async def with_human(self, channel: str, conversation_key: str) -> bool:
        """Whether a human agent has the conversation (or it waits for one): what the
        customer sends there is for the agent, also what the bot cannot read."""
        ...

    async def record_agent_message(
        self,
        channel: str,
        conversation_key: str,
        text: str,
        *,
        agent: str,
        agent_id: str,
        delivery_key: str,
    ) -> bool:
        """Store a message a human agent (``agent_id`` on the channel) wrote on the
        channel itself (it reached the customer already): once per ``delivery_key``,
        taking the conversation over. False when it is not an agent's message there (a
        conversation botkit does not know, or one the agent started as its customer):
        then submit it as an ordinary message."""
        ...

    async def move_conversation(self, channel: str, old_key: str, new_key: str) -> bool:
        """The chat of conversation ``old_key`` now has the id ``new_key`` (a Telegram
        group upgraded to a supergroup): the conversation continues under ``new_key``
        with its history, language, files and hand-off state (an agent keeps it).

        Call it when the platform says so; safe to call more than once and from every
        replica: True only for the call that moved it. False, with nothing changed,
        when no conversation has ``old_key`` (moved already, or never stored) and when
        one has ``new_key`` already (a message in the new chat was stored first: both
        are kept, and a warning is logged). A message stored under ``old_key`` after
        the move starts a new conversation there: map the keys of late messages from
        the old chat to the new one in the channel.

        Raises:
            StoreError: a bad key, or the store failed (nothing moved).
        """
        ...

    async def keep_file(
        self,
        channel: str,
        conversation_key: str,
        *,
        client_id: str,
        name: str,
        media_type: str,
        data: bytes,
        max_files: int | None = None,
    ) -> KeptFile:
        """Keep a file a customer sent, for the human agent of their conversation, where
        no platform keeps it (the web widget). Once per ``client_id`` in a conversation:
        a retry gets the first one back. A conversation holds
        at most ``max_files`` (None: no limit).

        Raises:
            UnknownConversationError: botkit has no such conversation.
            FileLimitError: the conversation holds ``max_files`` already.
            StoreError: the store refused it (bad name or type, too big) or failed.
        """
        ...

    async def kept_files(self, channel: str, conversation_key: str, client_id: str) -> KeptFiles:
        """How many files a conversation holds (0 when botkit has no such conversation),
        and the one kept under ``client_id`` if any: an upload is answered from it
        before its body is read.

        Raises:
            StoreError: the store failed.
        """
        ...

    async def session_key(self, name: str) -> bytes:
        """A random key kept in the store under ``name`` (made the first time any process
        asks): the same for every process sharing the database and across restarts, for
        a channel that signs its own session tokens and has no configured secret.

        Raises:
            StoreError: a bad name (see ``ConversationStore.session_key``) or the store
                failed.
        """
        ...


@runtime_checkable
class FileSource(Protocol):
    """A connector that can fetch the files customers send (``Attachment.ref``), for the
    human agents who answer them. The files stay on the platform; each is fetched when
    an agent opens it."""

    async def fetch_file(self, ref: str, *, max_bytes: int) -> bytes:
        """The content of the file ``ref`` names.

        Raises:
            ConnectorError: the platform does not have it (any more), it is larger
                than ``max_bytes``, or the platform cannot be reached.
        """
        ...


@runtime_checkable
class ReplyStream(Protocol):
    """A reply being generated for one conversation, handed to ``Connector.send_stream``.

    Iterate it for text deltas as they are produced; after iteration ends, ``final()``
    returns the complete, stored reply (with its ``seq``; a reply an agent's takeover
    cut before its first words is not stored: no ``seq``, empty text,
    ``OutboundReply.superseded``, and nothing of it is to be shown). Iteration may raise
    ``asyncio.CancelledError`` if the bot shuts down; the final text is still stored.
    """

    channel: str
    conversation_key: str
    reply_to: dict[str, str]
    in_reply_to_seq: int | None

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def final(self) -> OutboundReply: ...

    @property
    def stored_reply(self) -> OutboundReply | None:
        """The reply as the core stored it, once it has: after ``final()``, or after
        the shutdown cut the stream (the core stores the text generated so far as
        failed, ``metadata[REPLY_FAILED]``, once the connector's task has ended). None
        before, and when nothing was stored. Never waits, so a connector can read it
        while it shuts down, to show the customer what a replay will show."""
        ...

    @property
    def superseded(self) -> bool:
        """Whether a human agent took the conversation over while this reply was
        being generated: the reply ends at the next delta, and a connector showing a
        preview that the platform keeps by itself (a Telegram draft) stops updating it."""
        ...


@runtime_checkable
class WatchedConversations(Protocol):
    """A connector whose clients each stay connected to one bot process (the web
    widget's sockets), so that what another process sharing the database stores for
    them would not reach them live.

    While other processes are running, the core reads the newest ``seq`` of the
    conversations ``watched()`` names, about once a second, and hands them to
    ``advanced()``: the connector pushes its clients what they have not seen (from
    history). Connectors whose platform delivers every message whichever process sent
    it (Slack, Telegram) do not implement this.
    """

    def watched(self) -> Collection[str]:
        """Keys of the conversations that have a client connected here now."""
        ...

    def advanced(self, last_seqs: Mapping[str, int]) -> None:
        """The newest stored ``seq`` of watched conversations (of those that exist).

        Must not block: called on the event loop, once per look.
        """
        ...


async def best_effort(job: Coroutine[Any, Any, object], within: float) -> bool:
    """Run ``job`` in its own task for at most ``within`` seconds, then cancel it.

    For a connector's last call while the bot shuts down (marking a reply that was cut
    off): the task is shielded from the cancellation that is stopping the caller, and a
    second cancellation (a forced stop) ends the wait at once. Returns whether ``job``
    finished; its own errors are its business (catch them inside ``job``).
    """
    task = asyncio.ensure_future(job)
    try:
        await asyncio.wait({task}, timeout=within)
    except asyncio.CancelledError:
        pass  # cancelled again: stop waiting
    if task.done():
        return True
    task.cancel()
    return False
