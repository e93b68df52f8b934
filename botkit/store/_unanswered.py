"""Inbound messages whose processing never finished: what a crash left unanswered.

A message is stored ``received`` and becomes ``answered`` once the bot has finished with
it (a reply stored, sent or failed, or none due). One still ``received`` after a restart
was interrupted between storing and answering, or is still being answered: each
inbound message names the process answering it (``claimed_by``), and recovery takes only
those whose process is gone (see ``_processes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, or_, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store import _queries as q
from botkit.store.models import Contact, Conversation, Message, Process
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
    claimed_by: str | None = None  # the process that claimed it (to take it over from)
    # Whether the claimer still has a row (only known to a claimable query): False for a
    # process that closed, True for one whose heartbeat is stale.
    claimer_registered: bool = False


# Served by the partial index ix_messages_unanswered (direction/status as in its WHERE):
# it holds only the messages being answered now plus a crash's leftovers, so the claim
# checks below run on a handful of rows.
_FIND = (
    select(*q.MESSAGE_COLS)
    .add_columns(Message.claimed_by.label("m_claimed_by"))
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
# Only what nobody is answering: a claim by a process whose row is gone (it closed) or
# whose heartbeat is older than ``stale_before`` (it died), or no claim at all (stored by
# a version before claims, or by a store user that does not claim); see ``_claimable``.
_FIND_CLAIMABLE = _FIND.add_columns(Process.id.label("p_id")).outerjoin(
    Process, Process.id == Message.claimed_by
)


def _claimable(unclaimed_before: datetime | None, me: str | None) -> Select[Any]:
    unclaimed: ColumnElement[bool] = Message.claimed_by.is_(None)
    if unclaimed_before is not None:
        unclaimed = and_(unclaimed, Message.created_at < bindparam("unclaimed_before"))
    query = _FIND_CLAIMABLE.where(
        or_(
            unclaimed,
            and_(Message.claimed_by.is_not(None), Process.id.is_(None)),
            Process.heartbeat_at < bindparam("stale_before"),
        )
    )
    if me is not None:  # IS DISTINCT FROM: NULL claims stay in
        query = query.where(Message.claimed_by.is_distinct_from(bindparam("me", type_=String)))
    return query


class _Prefixed:
    """A row seen through one prefix of its labels, for the shared row converters."""

    def __init__(self, row: Any, prefix: str) -> None:
        mapping = row._mapping
        self._mapping: Any = {
            k[len(prefix) :]: mapping[k] for k in mapping.keys() if k.startswith(prefix)
        }


def find_unanswered(
    conn: Connection,
    since: datetime,
    limit: int,
    *,
    stale_before: datetime | None = None,
    unclaimed_before: datetime | None = None,
    me: str | None = None,
) -> list[Unanswered]:
    """Inbound messages still ``received``, stored since ``since``; with ``stale_before``
    only those nobody is answering (see ``_claimable``): unclaimed ones only if stored
    before ``unclaimed_before`` (when given), and none claimed by ``me`` (the asker)."""
    if stale_before is None:
        rows = conn.execute(_FIND, {"since": since, "limit": limit})
    else:
        params: dict[str, Any] = {"since": since, "limit": limit, "stale_before": stale_before}
        if unclaimed_before is not None:
            params["unclaimed_before"] = unclaimed_before
        if me is not None:
            params["me"] = me
        rows = conn.execute(_claimable(unclaimed_before, me), params)
    found = []
    for row in rows:
        extra: dict[str, Any] = row._mapping["extra"] or {}
        received = extra.get("received_at")
        found.append(
            Unanswered(
                conversation=q.to_conversation(_Prefixed(row, "v_")),
                contact=q.to_contact(_Prefixed(row, "c_")),
                message=q.to_message(row),
                channel_ids={str(k): str(v) for k, v in (extra.get("channel_ids") or {}).items()},
                received_at=datetime.fromisoformat(received) if isinstance(received, str) else None,
                claimed_by=row._mapping["m_claimed_by"],
                claimer_registered=row._mapping.get("p_id") is not None,
            )
        )
    return found
