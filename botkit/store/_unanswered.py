"""Inbound messages whose processing never finished: what a crash left unanswered.

A message is stored ``received`` and becomes ``answered`` once the bot has finished with
it (a reply stored, sent or failed, or none due). One still ``received`` after a restart
was interrupted between storing and answering; the bot answers it on start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store import _queries as q
from botkit.store.models import Contact, Conversation, Message
from botkit.store.records import ContactRecord, ConversationRecord, MessageStatus, StoredMessage

__all__ = ["Unanswered", "find_unanswered"]


@dataclass(frozen=True, slots=True)
class Unanswered:
    """An inbound message to answer again, with what rebuilding its event needs."""

    conversation: ConversationRecord
    contact: ContactRecord
    message: StoredMessage
    channel_ids: dict[str, str]
    received_at: datetime | None


# Served by the partial index ix_messages_unanswered (direction/status as in its WHERE).
_FIND = (
    select(*q.MESSAGE_COLS)
    .add_columns(*(c.label(f"v_{c.key}") for c in q.CONVERSATION_COLS))
    .add_columns(*(c.label(f"c_{c.key}") for c in q.CONTACT_COLS))
    .join(Conversation, Conversation.id == Message.conversation_id)
    .join(Contact, Contact.id == Message.contact_id)
    .where(
        Message.direction == Direction.INBOUND.value,
        Message.status == MessageStatus.RECEIVED.value,
        Message.created_at >= bindparam("since"),
    )
    .order_by(Message.id)
    .limit(bindparam("limit"))
)


class _Prefixed:
    """A row seen through one prefix of its labels, for the shared row converters."""

    def __init__(self, row: Any, prefix: str) -> None:
        mapping = row._mapping
        self._mapping: Any = {
            k[len(prefix) :]: mapping[k] for k in mapping.keys() if k.startswith(prefix)
        }


def find_unanswered(conn: Connection, since: datetime, limit: int) -> list[Unanswered]:
    found = []
    for row in conn.execute(_FIND, {"since": since, "limit": limit}):
        extra: dict[str, Any] = row._mapping["extra"] or {}
        received = extra.get("received_at")
        found.append(
            Unanswered(
                conversation=q.to_conversation(_Prefixed(row, "v_")),
                contact=q.to_contact(_Prefixed(row, "c_")),
                message=q.to_message(row),
                channel_ids={str(k): str(v) for k, v in (extra.get("channel_ids") or {}).items()},
                received_at=datetime.fromisoformat(received) if isinstance(received, str) else None,
            )
        )
    return found
