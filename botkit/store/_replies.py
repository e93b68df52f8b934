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

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store.models import Conversation, Message

__all__ = ["answered", "replies_to"]

# Conversations read per statement (their ids are bound parameters).
_CHUNK = 500


def answered(rows: Iterable[Any], owner: int) -> dict[int, int | None]:
    """Map the seq of each reply among ``rows`` to the contact id it answers (None:
    nobody we know of).

    Args:
        rows: one conversation's messages in ``seq`` order, each with ``seq``,
            ``direction``, ``contact_id`` and ``in_reply_to_seq``.
        owner: the conversation's contact id (answered by a reply before any message).
    """
    writers: dict[int, int | None] = {}
    latest: int | None = owner
    previous = 0
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


def replies_to(
    conn: Connection, contact_id: int, conversations: Collection[int]
) -> list[tuple[int, int, int]]:
    """The replies answering ``contact_id`` in ``conversations``, as
    ``(message id, conversation id, seq)`` in message-id order."""
    found: list[tuple[int, int, int]] = []
    ids: Sequence[int] = sorted(conversations)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        owners = {
            r.id: r.contact_id
            for r in conn.execute(
                select(Conversation.id, Conversation.contact_id).where(Conversation.id.in_(chunk))
            )
        }
        rows = conn.execute(
            select(Message.id, Message.conversation_id, Message.seq, Message.direction,
                   Message.contact_id, Message.in_reply_to_seq)
            .where(Message.conversation_id.in_(chunk))
            .order_by(Message.conversation_id, Message.seq)
        ).all()  # fmt: skip
        per: defaultdict[int, list[Any]] = defaultdict(list)
        for row in rows:
            per[row.conversation_id].append(row)
        for conversation_id, its in per.items():
            answers = answered(its, owners.get(conversation_id, -1))
            ids_by_seq = {r.seq: r.id for r in its}
            found.extend(
                (ids_by_seq[seq], conversation_id, seq)
                for seq, whom in answers.items()
                if whom == contact_id
            )
    return sorted(found)
