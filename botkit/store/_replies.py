"""Whom each reply in a conversation answers, for a person's export and erasure.

A conversation may be shared (a Slack channel thread, a Telegram group): several people
write in it and the bot or an agent answers each of them, often repeating what they wrote
("Noted b@y.com"). A reply belongs with the person it answers: their export includes it,
anyone else's withholds it, and their erasure deletes it.

* A reply with ``in_reply_to_seq`` (the bot's) answers the writer of that message; when
  that message is gone (its writer was erased before erasure took the replies too), it
  answers nobody we know of.
* A reply without one (an agent's, a message the bot sent on its own) answers the writer
  of the latest message before it; before any message, the conversation's owner. When a
  message between them is missing (erased), nobody we know of: it may have answered the
  erased one.

A reply answering nobody we know of is in nobody's export.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store.models import Conversation, Message

__all__ = ["answered", "in_others", "replies_to"]


def answered(rows: Sequence[Any], owner: int | None) -> dict[int, int | None]:
    """Map the seq of each reply among ``rows`` to the contact id it answers (None:
    nobody we know of).

    Args:
        rows: a conversation's messages in ``seq`` order from its first or from any
            inbound one on (earlier replies cannot answer later messages), each with
            ``seq``, ``direction``, ``contact_id`` and ``in_reply_to_seq``.
        owner: the conversation's contact id (answered by a reply before any message).
    """
    writers: dict[int, int | None] = {}
    latest: int | None = owner
    previous = rows[0].seq - 1 if rows else 0
    answers: dict[int, int | None] = {}
    for row in rows:
        if row.seq != previous + 1:
            latest = None  # erased messages before this one: it may answer them
        previous = row.seq
        if row.direction == Direction.INBOUND.value:
            writers[row.seq] = latest = row.contact_id
        elif row.in_reply_to_seq is not None:
            answers[row.seq] = writers.get(row.in_reply_to_seq)
        else:
            answers[row.seq] = latest
    return answers


def in_others(conn: Connection, contact_id: int, *columns: Any) -> dict[int, list[Any]]:
    """The ``columns`` (with ``seq``, ``direction``, ``contact_id``, ``in_reply_to_seq``)
    of the messages in others' conversations (a Slack thread) from ``contact_id``'s first
    message there on, per conversation id, in seq order: no earlier message is theirs
    or answers them, and a group's years of history before they joined are not read."""
    first = (
        select(Message.conversation_id, func.min(Message.seq).label("seq"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.contact_id == contact_id, Conversation.contact_id != contact_id)
        .group_by(Message.conversation_id)
        .subquery()
    )
    rows = conn.execute(
        select(Message.conversation_id.label("in_conversation"), *columns)
        .join(first, and_(Message.conversation_id == first.c.conversation_id,
                          Message.seq >= first.c.seq))
        .order_by(Message.conversation_id, Message.seq)
    ).all()  # fmt: skip
    per: dict[int, list[Any]] = {}
    for row in rows:
        per.setdefault(row.in_conversation, []).append(row)
    return per


def replies_to(conn: Connection, contact_id: int) -> list[tuple[int, int, int]]:
    """The replies answering ``contact_id`` in others' conversations, as ``(message id,
    conversation id, seq)`` in message-id order."""
    columns = (Message.id, Message.seq, Message.direction, Message.contact_id,
               Message.in_reply_to_seq)  # fmt: skip
    found: list[tuple[int, int, int]] = []
    for conversation_id, rows in in_others(conn, contact_id, *columns).items():
        answers = answered(rows, None)
        found.extend(
            (row.id, conversation_id, row.seq)
            for row in rows
            if row.seq in answers and answers[row.seq] == contact_id
        )
    return sorted(found)
