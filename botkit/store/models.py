"""ORM tables of the conversation store (SQLAlchemy 2.0 typed declarative).

These classes describe the schema for Alembic's autogenerate and for queries; the schema
itself is only ever created by the migrations in ``botkit/store/migrations``. A test
checks that the migrated database and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "CHANNEL_MAX",
    "CLIENT_ID_MAX",
    "DETACHED",
    "FILE_NAME_MAX",
    "KEY_MAX",
    "LANGUAGE_MAX",
    "MEDIA_TYPE_MAX",
    "PROCESS_ID_MAX",
    "SESSION_KEY_NAME_MAX",
    "VERSION_TABLE",
    "Base",
    "Contact",
    "Conversation",
    "CustomerFile",
    "Feedback",
    "InboundKey",
    "Message",
    "Process",
    "SessionKey",
    "UTCDateTime",
]

CHANNEL_MAX = 64
KEY_MAX = 512  # external ids, conversation keys, idempotency keys
LANGUAGE_MAX = 35  # longest practical BCP 47 tag
PROCESS_ID_MAX = 32  # a random hex id per bot run (botkit uses 16 hex digits)
CLIENT_ID_MAX = 64  # a customer file's idempotency key, chosen by the uploading client
FILE_NAME_MAX = 255  # what common file systems allow for one name
# The channel of a conversation a purge has begun deleting, out of its customer's reach
# (botkit/store/_retention.py): no message has it, as ``check_key`` refuses it.
DETACHED = ""
MEDIA_TYPE_MAX = 100
SESSION_KEY_NAME_MAX = 64
# Rows of the partial index of inbound messages the bot has not finished processing.
UNANSWERED_WHERE = "direction = 'in' AND status = 'received'"
# Conversations waiting for or with a human: the agents' queue, polled by dashboards
# (see ix_conversations_handoff_queue below).
HANDOFF_WHERE = "status IN ('waiting_human', 'with_human')"
# Alembic's bookkeeping table; a name of our own so botkit can share a PostgreSQL
# database with another application that uses Alembic.
VERSION_TABLE = "botkit_schema_version"

# Deterministic constraint names: Alembic needs names to drop or alter constraints later,
# and SQLite batch migrations rebuild tables by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments "INTEGER PRIMARY KEY"; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as
    naive UTC and get their ``tzinfo`` back on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetime
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Contact(Base):
    """A person on one channel."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "external_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX))
    external_id: Mapped[str] = mapped_column(String(KEY_MAX))
    display_name: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX))  # preferred
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Conversation(Base):
    """One (channel, conversation key). ``last_seq`` hands out message sequence numbers:
    it is incremented with ``UPDATE ... RETURNING`` in the transaction that appends a
    message, so the row lock orders concurrent writers and a rollback leaves no gap."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("channel", "conversation_key"),
        CheckConstraint(
            "status IN ('bot', 'waiting_human', 'with_human', 'closed')", name="status"
        ),
        CheckConstraint("last_seq >= 0", name="last_seq"),
        # Ids of deleted rows are never reused (migration 0004), as on PostgreSQL.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX))
    conversation_key: Mapped[str] = mapped_column(String(KEY_MAX))
    # No cascade: a contact is deleted only once it has no conversation (migration 0004).
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX))
    last_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When it entered its status (the agents' queue order); None only for rows a
    # previous version wrote during an upgrade (read as updated_at).
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ``last_seq`` when it entered its status (migration 0009): a message of the current
    # status has a higher ``seq``, which no host's clock can reorder (who has it,
    # ``botkit.store._handoffs``).
    status_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))


# The agents' queue (``conversations_with_status``, oldest first): partial, so it holds
# only the conversations with or waiting for a human, however many the table keeps;
# without it every call scanned and sorted the whole table (89 ms at 1M conversations).
Index(
    "ix_conversations_handoff_queue",
    func.coalesce(Conversation.status_changed_at, Conversation.updated_at),
    Conversation.id,
    sqlite_where=text(HANDOFF_WHERE),
    postgresql_where=text(HANDOFF_WHERE),
)


class Message(Base):
    """An append-only message. (conversation_id, seq) is unique and is the index every
    history query walks."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint(
            "status IN ('received', 'answered', 'sent', 'failed', 'rejected')", name="status"
        ),
        CheckConstraint("seq >= 1", name="seq"),
        # Inbound messages whose processing never finished (a crash): found on start and
        # answered then. Partial, so it stays as small as the backlog.
        Index(
            "ix_messages_unanswered",
            "created_at",
            sqlite_where=text(UNANSWERED_WHERE),
            postgresql_where=text(UNANSWERED_WHERE),
        ),
        {"sqlite_autoincrement": True},  # migration 0004
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(3))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    working_text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(KEY_MAX))
    in_reply_to_seq: Mapped[int | None] = mapped_column(Integer)
    # Channel ids, attachment metadata, buttons: shown again, never queried by.
    extra: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Inbound: the process (``processes.id``) answering the message, set in the INSERT
    # and taken over only by recovery. No foreign key: a process deletes its row when it
    # stops, and a claim naming a missing row is exactly "nobody is answering it".
    claimed_by: Mapped[str | None] = mapped_column(String(PROCESS_ID_MAX))


class Feedback(Base):
    """A customer's rating of one of the bot's replies (the feedback plugin).

    One row per reply and person: rating it again replaces the rating. Deleting the
    conversation or the person deletes their ratings (migration 0005).
    """

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("conversation_id", "reply_seq", "contact_id"),
        CheckConstraint("rating IN ('good', 'bad')", name="rating"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    reply_seq: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CustomerFile(Base):
    """A file a customer sent where no platform keeps it for botkit (the web widget):
    its bytes live here, so every replica sharing the database can serve it.

    Stored once per conversation and upload (``client_id``, the uploader's idempotency
    key). Deleting the conversation deletes its files (migration 0006).
    """

    __tablename__ = "customer_files"
    __table_args__ = (
        # Also the index on conversation_id (its first column) that retention and the
        # cascade use: a separate one would only cost writes (as for ``feedback``).
        UniqueConstraint("conversation_id", "client_id"),
        {"sqlite_autoincrement": True},  # ids of deleted files never come back (0004)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_MAX))
    name: Mapped[str] = mapped_column(String(FILE_NAME_MAX))
    media_type: Mapped[str] = mapped_column(String(MEDIA_TYPE_MAX))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundKey(Base):
    """The channel's delivery id of each stored inbound message, written in the same
    transaction as the message; its primary key is what makes intake idempotent."""

    __tablename__ = "inbound_keys"

    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(KEY_MAX), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Process(Base):
    """A running bot process. Its heartbeat says it is still answering the messages it
    claimed; a process deletes its row when it closes, and a crashed one stops beating."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(PROCESS_ID_MAX), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionKey(Base):
    """A random key that signs session tokens (the web widget's, when no ``site_secret``
    is set), made by the first process that needs it and read by every other one and
    every later run, so a restart or another replica keeps visitors signed in
    (migration 0007). Whoever can read this table can sign such tokens: it is as
    secret as the conversations beside it."""

    __tablename__ = "session_keys"

    name: Mapped[str] = mapped_column(String(SESSION_KEY_NAME_MAX), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
