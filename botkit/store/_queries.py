"""Statements and row conversion used inside the store's transactions.

Each function takes a synchronous ``Connection`` inside a transaction and does one step;
transaction boundaries, retries and threads live in ``_database.py`` and ``_runner.py``.
The hot statements are built once with bind parameters: constructing a SQLAlchemy
statement costs more Python time than executing its cached compiled form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Insert,
    RowMapping,
    String,
    Text,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from botkit.errors import UnknownConversationError
from botkit.events import Attachment, Button, Direction, InboundMessage
from botkit.events import Contact as ContactEvent
from botkit.store._checks import clean_meta
from botkit.store.models import Contact, Conversation, InboundKey, Message
from botkit.store.records import (
    ContactRecord,
    ConversationRecord,
    ConversationStatus,
    MessageStatus,
    StoredMessage,
)

__all__ = [
    "CONTACT_COLS",
    "CONVERSATION_COLS",
    "MESSAGE_COLS",
    "claim_seq",
    "claim_seq_by_id",
    "find_inbound",
    "finish_inbound",
    "get_contact",
    "get_conversation",
    "get_or_create_contact",
    "inbound_extra",
    "insert_inbound_key",
    "insert_message",
    "outbound_extra",
    "to_contact",
    "to_conversation",
    "to_message",
]

CONTACT_COLS = (
    Contact.id,
    Contact.channel,
    Contact.external_id,
    Contact.display_name,
    Contact.language,
    Contact.created_at,
)
CONVERSATION_COLS = (
    Conversation.id,
    Conversation.channel,
    Conversation.conversation_key,
    Conversation.contact_id,
    Conversation.status,
    Conversation.language,
    Conversation.created_at,
    Conversation.updated_at,
    Conversation.last_seq,
    Conversation.status_changed_at,
    Conversation.status_seq,
)
MESSAGE_COLS = (
    Message.id,
    Message.conversation_id,
    Message.seq,
    Message.direction,
    Message.text,
    Message.working_text,
    Message.language,
    Message.status,
    Message.created_at,
    Message.idempotency_key,
    Message.error,
    Message.in_reply_to_seq,
    Message.extra,
    Message.contact_id,
)


class _Row(Protocol):
    """Any result row, read by column name (row types differ per query and per
    SQLAlchemy version)."""

    @property
    def _mapping(self) -> RowMapping: ...


def to_contact(row: _Row) -> ContactRecord:
    r = row._mapping
    return ContactRecord(
        id=r["id"],
        channel=r["channel"],
        external_id=r["external_id"],
        display_name=r["display_name"],
        language=r["language"],
        created_at=r["created_at"],
    )


def to_conversation(row: _Row) -> ConversationRecord:
    r = row._mapping
    return ConversationRecord(
        id=r["id"],
        channel=r["channel"],
        key=r["conversation_key"],
        contact_id=r["contact_id"],
        status=ConversationStatus(r["status"]),
        language=r["language"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        last_seq=r["last_seq"],
        status_changed_at=r["status_changed_at"],
        status_seq=r["status_seq"],
    )


def to_message(row: _Row) -> StoredMessage:
    r = row._mapping
    return _message(r["id"], r)


def _message(message_id: int, r: Mapping[Any, Any]) -> StoredMessage:
    """A message from a row, or from the values it was just inserted with (columns left
    out of an INSERT are NULL)."""
    extra: dict[str, Any] = r["extra"] or {}
    buttons = tuple(Button(b["label"], b["value"]) for b in extra.get("buttons", ()))
    return StoredMessage(
        id=message_id,
        conversation_id=r["conversation_id"],
        seq=r["seq"],
        direction=Direction(r["direction"]),
        text=r["text"],
        working_text=r.get("working_text"),
        language=r.get("language"),
        status=MessageStatus(r["status"]),
        created_at=r["created_at"],
        idempotency_key=r.get("idempotency_key"),
        error=r.get("error"),
        in_reply_to_seq=r.get("in_reply_to_seq"),
        buttons=buttons,
        contact_id=r.get("contact_id"),
        agent=agent if isinstance(agent := extra.get("agent"), str) else None,
        attachments=_attachments(extra.get("attachments")),
        source=source if isinstance(source := extra.get("source"), str) else None,
        source_error=error if isinstance(error := extra.get("source_error"), str) else None,
    )


def _attachments(stored: Any) -> tuple[Attachment, ...]:
    """Attachments as ``inbound_extra`` stored them; anything else in the JSON column
    (a row edited by hand) is left out rather than failing every read of it."""
    if not isinstance(stored, list):
        return ()
    found = []
    for item in stored:
        if isinstance(item, dict) and isinstance(kind := item.get("kind"), str):
            fields = {f: item.get(f) for f in ("name", "mime_type", "url", "ref")}
            size = item.get("size")
            found.append(
                Attachment(
                    kind,
                    **{f: v if isinstance(v, str) else None for f, v in fields.items()},
                    size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                )
            )
    return tuple(found)


def inbound_extra(msg: InboundMessage) -> dict[str, Any]:
    """What an inbound message carries besides its text, as stored JSON."""
    extra: dict[str, Any] = {"received_at": msg.received_at.isoformat()}
    if msg.channel_ids:
        extra["channel_ids"] = dict(msg.channel_ids)
    if msg.attachments:
        extra["attachments"] = [dataclasses.asdict(a) for a in msg.attachments]
    return dict(clean_meta(extra))


# Bounds of a reply's stored source and source error: a name a plugin picks, and an
# exception's text (diagnostics, often quoting a server's answer): enough to tell why.
MAX_SOURCE = 64
MAX_SOURCE_ERROR = 500


def outbound_extra(
    buttons: tuple[Button, ...],
    agent: str | None,
    *,
    source: str | None = None,
    source_error: str | None = None,
) -> dict[str, Any] | None:
    """What an outbound message carries besides its text (quick replies, the human agent
    who wrote it, what produced the bot's reply and what failed), as stored JSON."""
    extra: dict[str, Any] = {}
    if buttons:
        extra["buttons"] = [{"label": b.label, "value": b.value} for b in buttons]
    if agent is not None:
        extra["agent"] = agent
    if source is not None:
        extra["source"] = source[:MAX_SOURCE]
    if source_error is not None:
        extra["source_error"] = source_error[:MAX_SOURCE_ERROR]
    return dict(clean_meta(extra)) if extra else None


# -- prebuilt statements --------------------------------------------------------------

_FIND_INBOUND = (
    select(*MESSAGE_COLS)
    .join(InboundKey, InboundKey.message_id == Message.id)
    .where(
        InboundKey.channel == bindparam("channel"), InboundKey.idempotency_key == bindparam("key")
    )
)
_CONVERSATION_BY_ID = select(*CONVERSATION_COLS).where(Conversation.id == bindparam("id"))
_CONTACT_BY_ID = select(*CONTACT_COLS).where(Contact.id == bindparam("id"))
_CONTACT_BY_KEY = select(*CONTACT_COLS).where(
    Contact.channel == bindparam("channel"), Contact.external_id == bindparam("external_id")
)
# (UPDATE bind names must differ from column names, hence the b_ prefix.)
_FILL_CONTACT_LANGUAGE = (
    update(Contact)
    .where(Contact.id == bindparam("b_id"), Contact.language.is_(None))
    .values(language=bindparam("b_language"), updated_at=bindparam("b_now"))
)
_BUMP = {"last_seq": Conversation.last_seq + 1, "updated_at": bindparam("b_now")}
# A customer's message reopens a closed conversation: its key (a chat, a DM, a visitor)
# never changes, so a closed one left closed would mute that customer for good.
_REOPEN = case(
    (Conversation.status == ConversationStatus.CLOSED.value, ConversationStatus.BOT.value),
    else_=Conversation.status,
)
_REOPENED_AT = case(
    (Conversation.status == ConversationStatus.CLOSED.value, bindparam("b_now")),
    else_=func.coalesce(Conversation.status_changed_at, Conversation.updated_at),
)
# (SET reads the row's old values: a reopened conversation's status starts after its
# old last message, so this message is the first of it.)
_REOPENED_SEQ = case(
    (Conversation.status == ConversationStatus.CLOSED.value, Conversation.last_seq),
    else_=Conversation.status_seq,
)
_CLAIM_BY_KEY = (
    update(Conversation)
    .where(
        Conversation.channel == bindparam("b_channel"),
        Conversation.conversation_key == bindparam("b_key"),
    )
    .values(
        {**_BUMP, "status": _REOPEN, "status_changed_at": _REOPENED_AT, "status_seq": _REOPENED_SEQ}
    )
    .returning(*CONVERSATION_COLS)
)
# A row without status_changed_at (written before 0003) is read as entering its status
# at its updated_at, which this UPDATE moves: keep the time it was read as, or every
# agent's message would start the hand-off again (``held_since`` then refused it).
_CLAIM_BY_ID = (
    update(Conversation)
    .where(Conversation.id == bindparam("b_id"))
    .values(
        {
            **_BUMP,
            "status_changed_at": func.coalesce(
                Conversation.status_changed_at, Conversation.updated_at
            ),
        }
    )
    .returning(*CONVERSATION_COLS)
)
# Only the id comes back: the rest is what was inserted (decoding a returned row's
# datetime and JSON costs more than the INSERT itself).
_INSERT_MESSAGE = insert(Message).returning(Message.id)
# The bot is done with an inbound message: what it learned (language, working-language
# text; NULL leaves a column as it is) and received -> answered, in one statement. It
# returns what it changed, as stored: the caller's copy of the message may be older than
# the row (a second finish from intake's copy), and the history cache must hold the row.
_FINISHED_COLS = (Message.language, Message.working_text, Message.status, Message.error)
_FINISH_INBOUND = (
    update(Message)
    .where(Message.id == bindparam("b_id"), Message.direction == Direction.INBOUND.value)
    .values(
        language=func.coalesce(bindparam("b_language", type_=String), Message.language),
        working_text=func.coalesce(bindparam("b_working_text", type_=Text), Message.working_text),
        status=case(
            (Message.status == MessageStatus.RECEIVED.value, MessageStatus.ANSWERED.value),
            else_=Message.status,
        ),
    )
    .returning(*_FINISHED_COLS)
)

# The same, only while the conversation's status is one of ``b_statuses``: an agent's
# release committed before this statement gives the message back to the bot.
_FINISH_INBOUND_WHILE = _FINISH_INBOUND.where(
    exists(
        select(Conversation.id).where(
            Conversation.id == Message.conversation_id,
            Conversation.status.in_(bindparam("b_statuses", expanding=True)),
        )
    )
)


@cache
def _insert_ignore(dialect: str, table: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING`` for one table and dialect."""
    entity, cols = {
        "contacts": (Contact, CONTACT_COLS),
        "conversations": (Conversation, CONVERSATION_COLS),
        "inbound_keys": (InboundKey, (InboundKey.message_id,)),
    }[table]
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return make(entity).on_conflict_do_nothing().returning(*cols)


# -- steps ----------------------------------------------------------------------------


def find_inbound(
    conn: Connection, channel: str, key: str
) -> tuple[ConversationRecord, StoredMessage] | None:
    """The message stored earlier under this delivery key, with its conversation."""
    row = conn.execute(_FIND_INBOUND, {"channel": channel, "key": key}).first()
    if row is None:
        return None
    message = to_message(row)
    conv = conn.execute(_CONVERSATION_BY_ID, {"id": message.conversation_id}).one()
    return to_conversation(conv), message


def get_conversation(conn: Connection, conversation_id: int) -> ConversationRecord | None:
    row = conn.execute(_CONVERSATION_BY_ID, {"id": conversation_id}).first()
    return None if row is None else to_conversation(row)


def get_contact(conn: Connection, contact_id: int) -> ContactRecord | None:
    row = conn.execute(_CONTACT_BY_ID, {"id": contact_id}).first()
    return None if row is None else to_contact(row)


def get_or_create_contact(
    conn: Connection, contact: ContactEvent, hint: str | None, now: datetime
) -> ContactRecord:
    """The stored contact for (channel, external id), created on first sight. The channel's
    language hint fills in a preferred language that is not known yet."""
    key = {"channel": contact.channel, "external_id": contact.external_id}
    row = conn.execute(_CONTACT_BY_KEY, key).first()
    if row is None:
        name = None if contact.display_name is None else clean_meta(contact.display_name)[:255]
        values = {
            **key,
            "display_name": name,
            "language": hint,
            "created_at": now,
            "updated_at": now,
        }
        row = conn.execute(_insert_ignore(conn.dialect.name, "contacts"), values).first()
        if row is None:  # created by a concurrent transaction that has committed since
            row = conn.execute(_CONTACT_BY_KEY, key).one()
    record = to_contact(row)
    if record.language is None and hint is not None:
        conn.execute(_FILL_CONTACT_LANGUAGE, {"b_id": record.id, "b_language": hint, "b_now": now})
        record = dataclasses.replace(record, language=hint)
    return record


def claim_seq(
    conn: Connection, channel: str, key: str, contact: ContactRecord, now: datetime
) -> tuple[ConversationRecord, bool]:
    """Take the next sequence number of conversation (channel, key) for an inbound
    message, creating the conversation if needed (for ``contact``) and reopening it
    (status ``bot``) if it was closed.

    A new conversation has no language: the contact's preferred language (often only
    the first channel hint seen) is where language detection starts from, not a
    language the customer has been seen writing, so the first message is judged as a
    new conversation's (``botkit.language.policy``), not as a switch away from it.

    The UPDATE locks the conversation row until the transaction ends, so concurrent
    writers to one conversation line up, and a rolled-back transaction gives its number
    back: no gaps, no repeats.

    Returns:
        The conversation after the update (``last_seq`` is the claimed number) and whether
        this call created it.
    """
    params = {"b_channel": channel, "b_key": key, "b_now": now}
    row = conn.execute(_CLAIM_BY_KEY, params).first()
    if row is not None:
        return to_conversation(row), False
    values = {
        "channel": channel,
        "conversation_key": key,
        "contact_id": contact.id,
        "status": ConversationStatus.BOT.value,
        "language": None,
        "last_seq": 1,
        "created_at": now,
        "updated_at": now,
        "status_changed_at": now,
        "status_seq": 0,
    }
    row = conn.execute(_insert_ignore(conn.dialect.name, "conversations"), values).first()
    if row is not None:
        return to_conversation(row), True
    # Created by a concurrent transaction between our UPDATE and INSERT.
    return to_conversation(conn.execute(_CLAIM_BY_KEY, params).one()), False


def claim_seq_by_id(conn: Connection, conversation_id: int, now: datetime) -> ConversationRecord:
    """Take the next sequence number of an existing conversation."""
    row = conn.execute(_CLAIM_BY_ID, {"b_id": conversation_id, "b_now": now}).first()
    if row is None:
        raise UnknownConversationError(f"no conversation with id {conversation_id}")
    return to_conversation(row)


def finish_inbound(
    conn: Connection,
    message: StoredMessage,
    language: str | None,
    working_text: str | None,
    only_while: Sequence[str] | None = None,
) -> StoredMessage | None:
    """An inbound message still ``received`` becomes ``answered``; a language or
    working-language text given is stored with it. With ``only_while``, only while its
    conversation's status is one of those (read in the same statement).

    Returns:
        ``message`` as now stored (its language, working text, status and error read
        back from the row), or None when it was not found (or, with ``only_while``, its
        conversation was in another status).
    """
    params: dict[str, Any] = {
        "b_id": message.id, "b_language": language, "b_working_text": working_text,
    }  # fmt: skip
    stmt = _FINISH_INBOUND
    if only_while is not None:
        params["b_statuses"] = list(only_while)
        stmt = _FINISH_INBOUND_WHILE
    row = conn.execute(stmt, params).first()
    if row is None:
        return None
    r = row._mapping
    return dataclasses.replace(
        message,
        language=r["language"],
        working_text=r["working_text"],
        status=MessageStatus(r["status"]),
        error=r["error"],
    )


def insert_message(conn: Connection, values: dict[str, Any]) -> StoredMessage:
    """Insert a message row; ``values`` must name every NOT NULL column and ``extra``."""
    message_id: int = conn.execute(_INSERT_MESSAGE, values).scalar_one()
    return _message(message_id, values)


def insert_inbound_key(
    conn: Connection, channel: str, key: str, message_id: int, now: datetime
) -> bool:
    """Record the delivery key; False when another transaction recorded it first."""
    values = {
        "channel": channel,
        "idempotency_key": key,
        "message_id": message_id,
        "created_at": now,
    }
    return (
        conn.execute(_insert_ignore(conn.dialect.name, "inbound_keys"), values).first() is not None
    )


def status_set(state: str, now: datetime) -> dict[str, Any]:
    """UPDATE values that put a conversation in ``state``, moving ``status_changed_at``
    and ``status_seq`` only when the status really changes (SET reads the row's old
    values; a row without a time keeps its old ``updated_at``, the time
    ``waiting_since`` reads for it). The UPDATE locks the row, as a message's claim of
    its ``seq`` does: every message with a higher ``seq`` was stored after the change."""
    same = Conversation.status == state
    return {
        "status": state,
        "status_changed_at": case((same, waiting_since()), else_=now),
        "status_seq": case((same, Conversation.status_seq), else_=Conversation.last_seq),
    }


def waiting_since() -> ColumnElement[datetime]:
    """When a conversation entered its status (``updated_at`` for older rows)."""
    return func.coalesce(Conversation.status_changed_at, Conversation.updated_at)
