"""Whom each reply in a conversation answers, for a person's export and erasure.

A conversation may be shared (a Slack channel thread, a Telegram group): several people
write in it and the bot or an agent answers them, often repeating what they wrote
("Noted b@y.com", "A: refund for 4242 sent to a@x.com"). A reply is attributed to a set
of people, those whose data it may carry:

* A reply with ``in_reply_to_seq`` (the bot's) answers the writer of that message; when
  that message is gone (its writer was erased before erasure took the replies too), it
  answers nobody we know of.
* A reply without one (an agent's, agents writing in a Slack thread, a notice the bot
  sends on its own) may answer anyone who wrote since the previous reply: it is
  attributed to all of them. With nobody since, it goes on answering whom the previous
  reply answered; before any reply, the conversation's owner. A message missing in
  between (erased) adds somebody we do not know of: it may have answered the erased one.

A person's export holds a reply only when it is attributed to them alone (never text
that may carry someone else's data, even in their own conversation: a group's owner
does not get the agent's answer to "where is my order" once someone else wrote "+1"
before it; it counts among ``others_messages_withheld``). A person's erasure deletes
every reply attributed to them, alone or with others (anything that may carry their
data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store.models import Conversation, Message

__all__ = ["UNKNOWN", "answered", "in_others", "replies_to"]

UNKNOWN = frozenset[int | None]({None})
"""Attributed to somebody we do not know of (an erased writer): in nobody's export."""


def answered(rows: Sequence[Any], owner: int | None) -> dict[int, frozenset[int | None]]:
    """Map the seq of each reply among ``rows`` to the contact ids it is attributed to
    (None among them: somebody we do not know of).

    Args:
        rows: a conversation's messages in ``seq`` order from its first or from a reply
            on (what comes before that reply cannot be attributed to what follows it),
            each with ``seq``, ``direction``, ``contact_id`` and ``in_reply_to_seq``.
        owner: the conversation's contact id (answered by a reply before any message;
            None when ``rows`` do not start at the conversation's first message).
    """
    writers: dict[int, int | None] = {}
    window: set[int | None] = set()  # who wrote since the previous reply
    previous_set: frozenset[int | None] = frozenset({owner})
    previous = rows[0].seq - 1 if rows else 0
    answers: dict[int, frozenset[int | None]] = {}
    for index, row in enumerate(rows):
        if row.seq != previous + 1:
            window.add(None)  # erased messages before this one: it may answer them
        previous = row.seq
        if row.direction == Direction.INBOUND.value:
            writers[row.seq] = row.contact_id
            window.add(row.contact_id)
            continue
        if index == 0 and owner is None:
            previous_set = UNKNOWN  # a reply before the rows read: whom it answered is unread
            window.clear()
            continue
        if row.in_reply_to_seq is not None:
            target = writers.get(row.in_reply_to_seq)
            answer = UNKNOWN if target is None else frozenset({target})
        else:
            answer = frozenset(window) if window else previous_set
        answers[row.seq] = previous_set = answer
        window.clear()
    return answers


def in_others(conn: Connection, contact_id: int, *columns: Any) -> dict[int, list[Any]]:
    """The ``columns`` (with ``seq``, ``direction``, ``contact_id``, ``in_reply_to_seq``)
    of the messages in others' conversations (a Slack thread) from the last reply
    before ``contact_id``'s first message there on (or from the conversation's first),
    per conversation id, in seq order: no earlier message is theirs or may be
    attributed to them, and a group's years of history before they joined are not
    read. Who wrote between that reply and their first message is read: a reply after
    it may answer them too."""
    first = (
        select(Message.conversation_id, func.min(Message.seq).label("seq"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.contact_id == contact_id, Conversation.contact_id != contact_id)
        .group_by(Message.conversation_id)
        .subquery()
    )
    starts = conn.execute(
        select(first.c.conversation_id, func.coalesce(func.max(Message.seq), 0))
        .select_from(first)
        .outerjoin(Message, and_(Message.conversation_id == first.c.conversation_id,
                                 Message.seq < first.c.seq,
                                 Message.direction == Direction.OUTBOUND.value))
        .group_by(first.c.conversation_id)
        .order_by(first.c.conversation_id)
    ).all()  # fmt: skip
    per: dict[int, list[Any]] = {}
    for conversation_id, start in starts:
        per[conversation_id] = list(
            conn.execute(
                select(*columns)
                .where(Message.conversation_id == conversation_id, Message.seq >= start)
                .order_by(Message.seq)
            ).all()
        )
    return per


def replies_to(conn: Connection, contact_id: int) -> list[tuple[int, int, int]]:
    """The replies in others' conversations attributed to ``contact_id`` (alone or with
    others: they may carry their data), as ``(message id, conversation id, seq)`` in
    message-id order."""
    columns = (Message.id, Message.seq, Message.direction, Message.contact_id,
               Message.in_reply_to_seq)  # fmt: skip
    found: list[tuple[int, int, int]] = []
    for conversation_id, rows in in_others(conn, contact_id, *columns).items():
        answers = answered(rows, None)
        found.extend(
            (row.id, conversation_id, row.seq)
            for row in rows
            if contact_id in answers.get(row.seq, ())
        )
    return sorted(found)
