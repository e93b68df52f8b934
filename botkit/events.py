"""Frozen event types that cross the boundary between connectors and the core.

Connectors build ``InboundMessage`` from platform payloads; the core answers with
``OutboundReply`` (complete) or a stream of ``ReplyChunk`` deltas; lifecycle changes are
``SystemEvent`` subclasses. Everything is immutable so it can be shared across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ANSWERED_LANGUAGE",
    "REPLY_FAILED",
    "Attachment",
    "Button",
    "Contact",
    "ConversationClosed",
    "ConversationMoved",
    "ConversationStarted",
    "Direction",
    "FeedbackGiven",
    "HandoffRequested",
    "InboundMessage",
    "OutboundReply",
    "ReplyChunk",
    "SystemEvent",
    "utcnow",
]


# ``OutboundReply.metadata`` key, present when the reply's write also recorded the
# inbound message ``in_reply_to_seq`` as answered: the language that message was read in
# (None when none was detected). Its stored status is then ``answered``.
ANSWERED_LANGUAGE = "answered_language"
# ``OutboundReply.metadata`` key, True when the reply is stored with status ``failed``:
# the shutdown cut it, the channel refused it, or an agent's takeover cut it short.
REPLY_FAILED = "reply_failed"  # namespaced: a plugin's own "failed" key is not it


def utcnow() -> datetime:
    """Timezone-aware current time (UTC)."""
    return datetime.now(UTC)


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


@dataclass(frozen=True, slots=True)
class Contact:
    """The person writing, as the channel knows them."""

    channel: str
    external_id: str
    display_name: str | None = None
    language_hint: str | None = None  # e.g. Telegram language_code, Slack locale, page lang


@dataclass(frozen=True, slots=True)
class Attachment:
    """Metadata about a file the customer sent; the bytes stay on the platform."""

    kind: str  # "image", "audio", "file", "sticker", ...
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    url: str | None = None
    # The platform's own handle for fetching it through its connector (a Telegram
    # file_id: useless without the bot's token); see ``botkit.channel.FileSource``.
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A customer message as handed to the core by a connector.

    Attributes:
        channel: connector name ("web", "slack", "telegram", "console").
        conversation_key: stable key of the conversation within the channel (chat id,
            channel+thread ts, widget session...).
        contact: who wrote it.
        text: raw text as received (the core sanitizes it before storing).
        idempotency_key: the channel's own id of the message (Slack channel + ts,
            Telegram update_id, widget client message id). A second delivery with the
            same key is not answered again.
        channel_ids: channel-specific ids the connector needs to reply (thread ts,
            message id...). Strings only so they serialize without surprises.
        attachments: metadata of attached files.
        received_at: when the connector received it. A naive value (no time zone) is
            read as UTC.
    """

    channel: str
    conversation_key: str
    contact: Contact
    text: str
    idempotency_key: str
    channel_ids: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        # Connectors of other packages build these. A naive time used to be stored as
        # it came, then refused when read back from the outage spool, after the channel
        # was acknowledged: the message was lost. It is read as UTC (what the deprecated
        # datetime.utcnow() gives) rather than refused, so such a connector, and rows it
        # stored before, keep working. Costs one attribute check per message.
        if self.received_at.tzinfo is None:
            object.__setattr__(self, "received_at", self.received_at.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class Button:
    """A quick reply. ``value`` comes back as the text of an inbound message when clicked."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class OutboundReply:
    """A complete reply to one conversation.

    ``reply_to`` carries the inbound message's ``channel_ids`` so a connector can thread
    the answer; ``in_reply_to_seq`` is the stored sequence number of the inbound message.

    ``superseded`` is True on a bot reply a human agent's takeover cut short: a connector
    marks what it showed of it as cut off and sends nothing new for it (the agent
    answers now). Cut before its first words, it was not stored (no ``seq``, empty
    text) and nothing of it is to be shown.
    """

    channel: str
    conversation_key: str
    text: str
    buttons: tuple[Button, ...] = ()
    reply_to: dict[str, str] = field(default_factory=dict)
    in_reply_to_seq: int | None = None
    seq: int | None = None  # sequence number of this reply once stored
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None  # when it was stored (UTC), once stored
    superseded: bool = False


@dataclass(frozen=True, slots=True)
class ReplyChunk:
    """One streamed piece of a reply being generated. ``index`` starts at 0."""

    conversation_key: str
    index: int
    delta: str


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """Base of lifecycle events published by the core."""

    channel: str
    conversation_key: str
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ConversationStarted(SystemEvent):
    """A customer's message opened a conversation: a new one, or (``reopened``) one
    that was closed, which their message opens again."""

    reopened: bool = False


@dataclass(frozen=True, slots=True)
class ConversationClosed(SystemEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConversationMoved(SystemEvent):
    """The conversation once keyed ``old_key`` continues under ``conversation_key``: its
    chat got a new id (a Telegram group upgraded to a supergroup). Whoever keeps
    something per conversation key (an agents' tool, a plugin) follows it there."""

    old_key: str = ""


@dataclass(frozen=True, slots=True)
class HandoffRequested(SystemEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FeedbackGiven(SystemEvent):
    """A customer rated the reply with ``seq`` ``reply_seq``: "good" or "bad"."""

    rating: str = ""
    reply_seq: int = 0
