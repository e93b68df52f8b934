"""Immutable records the store hands out. Nothing outside ``botkit.store`` sees ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from botkit.events import Attachment, Button, Direction

__all__ = [
    "ContactRecord",
    "ConversationRecord",
    "ConversationStatus",
    "CustomerFileRecord",
    "IntakeResult",
    "MessageStatus",
    "ProcessRecord",
    "StoredMessage",
]


class MessageStatus(StrEnum):
    """Life of one stored message. Inbound: received → answered (or rejected); outbound:
    sent or failed."""

    RECEIVED = "received"
    ANSWERED = "answered"
    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"


class ConversationStatus(StrEnum):
    """Who is handling a conversation. ``closed`` lasts until the customer writes again:
    their next message reopens it as ``bot``."""

    BOT = "bot"
    WAITING_HUMAN = "waiting_human"
    WITH_HUMAN = "with_human"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as stored (append-only; only ``status`` and ``error`` change later).

    Attributes:
        id: database id.
        conversation_id: the conversation it belongs to.
        seq: position in the conversation, 1, 2, 3... without gaps.
        direction: inbound (customer) or outbound (bot or human agent).
        text: the text as the customer wrote it / as sent to the customer (sanitized).
        working_text: the same text in the conversation's working language (the language
            the model works in), or None when no translation was needed.
        language: detected (inbound) or target (outbound) language of ``text``.
        status: see ``MessageStatus``.
        created_at: when it was stored (UTC, timezone-aware).
        idempotency_key: the channel's delivery id (inbound only).
        error: why delivery failed, for ``failed`` messages.
        in_reply_to_seq: for replies, the ``seq`` of the inbound message answered.
        buttons: quick replies sent with an outbound message.
        contact_id: who wrote an inbound message.
        agent: for an outbound message a human agent wrote, the name they gave (``""``
            when they gave none); None for the bot's replies and inbound messages.
        attachments: metadata of the files an inbound message came with.
        source: for the bot's replies (stored since it was kept), what produced it:
            ``backend`` (the model), ``busy`` / ``fallback`` (that reply took the
            model's place), ``too_long``, ``rate_limited``, a plugin's name...; None
            otherwise.
        source_error: for a ``busy`` / ``fallback`` reply, the failure it stands for
            (``Type: message``, at most 500 characters).
    """

    id: int
    conversation_id: int
    seq: int
    direction: Direction
    text: str
    working_text: str | None
    language: str | None
    status: MessageStatus
    created_at: datetime
    idempotency_key: str | None
    error: str | None
    in_reply_to_seq: int | None = None
    buttons: tuple[Button, ...] = ()
    contact_id: int | None = None
    agent: str | None = None
    attachments: tuple[Attachment, ...] = ()
    source: str | None = None
    source_error: str | None = None

    @property
    def model_text(self) -> str:
        """The text the model sees: the working-language text when there is one."""
        return self.text if self.working_text is None else self.working_text


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """A conversation: one (channel, conversation key) pair.

    ``last_seq`` is the ``seq`` of its newest message (0 before the first one);
    ``status_changed_at`` when it entered its status, as stored (None for rows written
    before the store kept it; ``status_since`` reads those as ``updated_at``);
    ``status_seq`` its ``last_seq`` then (moved only when the status changes: which
    messages a hand-off holds, ``botkit.store._handoffs``).
    """

    id: int
    channel: str
    key: str
    contact_id: int
    status: ConversationStatus
    language: str | None
    created_at: datetime
    updated_at: datetime
    last_seq: int = 0
    status_changed_at: datetime | None = None
    status_seq: int = 0

    @property
    def status_since(self) -> datetime:
        """When it entered its status (its last activity where that is unknown)."""
        return self.status_changed_at or self.updated_at


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A person on one channel; ``language`` is their preferred language, if known."""

    id: int
    channel: str
    external_id: str
    display_name: str | None
    language: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerFileRecord:
    """A file a customer sent from the web widget, bytes and all.

    Attributes:
        id: database id.
        conversation_id: the conversation it was sent in.
        client_id: the uploader's idempotency key (unique within the conversation).
        name: the file name as stored (cleaned, at most 255 characters).
        media_type: its ``type/subtype``, lower-case, as the uploader declared it (not
            checked against the bytes).
        size: ``len(data)``.
        data: the file's bytes.
        created_at: when it was stored (UTC, timezone-aware).
    """

    id: int
    conversation_id: int
    client_id: str
    name: str
    media_type: str
    size: int
    data: bytes = field(repr=False)  # up to 20 MiB: not in logs or tracebacks
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What ``ConversationStore.intake`` did.

    ``duplicate`` is True when the channel's idempotency key was already stored: then
    ``message`` is the original message and nothing new was written.
    ``new_conversation`` is True when this message opened the conversation, and
    ``reopened`` when it reopened a closed one.
    ``contact`` is whoever wrote ``message``.
    """

    conversation: ConversationRecord
    message: StoredMessage
    duplicate: bool
    new_conversation: bool
    contact: ContactRecord | None = None
    reopened: bool = False


@dataclass(frozen=True, slots=True)
class InboundFinish:
    """The bot is done with an inbound message: what it learned about it on the way.

    Recorded by ``finish_inbound`` or together with the reply (``append_outbound``):
    the message's language and working-language text (when known), and its move from
    ``received`` to ``answered``.
    """

    message: StoredMessage
    language: str | None = None
    working_text: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One run of a bot process, as registered in the ``processes`` table.

    ``id`` is random per run (a restarted process is a new one); ``host`` and ``pid``
    are there for operators reading the table.
    """

    id: str
    host: str
    pid: int
    started_at: datetime
