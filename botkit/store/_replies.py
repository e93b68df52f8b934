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
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store.models import Conversation, Message

__all__ = ["UNKNOWN", "Attributed", "answered", "attributed_elsewhere"]

UNKNOWN = frozenset[int | None]({None})
"""Attributed to somebody we do not know of (an erased writer): in nobody's export."""

# What whom-a-reply-answers needs of each message (never the texts: a person's erasure
# reads others' conversations inside its write transaction).
_LIGHT = (Message.id, Message.seq, Message.direction, Message.contact_id,
          Message.in_reply_to_seq)  # fmt: skip
_CHUNK = 1000  # rows read at a time, at most (the first read after a jump: _FIRST)
_FIRST = 20  # a scan mostly stops within a few rows of where it starts
_IN_LIST = 500  # seqs per IN (...) list


class _Attribution:
    """Whom each reply answers, fed a conversation's messages in seq order (the rules
    in the module docstring)."""

    def __init__(self, owner: int | None, start: int) -> None:
        self.writers: dict[int, int | None] = {}
        self.window: set[int | None] = set()  # who wrote since the previous reply
        self.previous_set = frozenset[int | None]({owner})  # whom that reply answered
        self.previous = start  # the seq before the next one expected
        self.unread_before = owner is None  # a first reply's own window was not read

    def feed(self, row: Any) -> frozenset[int | None] | None:
        """Whom ``row`` answers: None for a customer's message (or a reply whose own
        window came before the rows read)."""
        if row.seq != self.previous + 1:
            self.window.add(None)  # erased messages before this one: it may answer them
        self.previous = row.seq
        if row.direction == Direction.INBOUND.value:
            self.unread_before = False
            self.writers[row.seq] = row.contact_id
            self.window.add(row.contact_id)
            return None
        if self.unread_before:
            self.unread_before = False
            self.previous_set = UNKNOWN
            self.window.clear()
            return None
        if row.in_reply_to_seq is not None:
            target = self.writers.get(row.in_reply_to_seq)
            answer = UNKNOWN if target is None else frozenset({target})
        else:
            answer = frozenset(self.window) if self.window else self.previous_set
        self.previous_set = answer
        self.window.clear()
        return answer


def answered(rows: Sequence[Any], owner: int | None) -> dict[int, frozenset[int | None]]:
    """Map the seq of each reply among ``rows`` to the contact ids it is attributed to
    (None among them: somebody we do not know of).

    Args:
        rows: a conversation's messages in ``seq`` order from its first, each with
            ``seq``, ``direction``, ``contact_id`` and ``in_reply_to_seq``.
        owner: the conversation's contact id (answered by a reply before any message).
    """
    attribution = _Attribution(owner, rows[0].seq - 1 if rows else 0)
    answers: dict[int, frozenset[int | None]] = {}
    for row in rows:
        answer = attribution.feed(row)
        if answer is not None:
            answers[row.seq] = answer
    return answers


class Attributed(NamedTuple):
    """A message in someone else's conversation that is a person's: one they wrote
    (``reply`` False), or a reply attributed to them, ``alone`` or with others."""

    id: int
    conversation_id: int
    seq: int
    reply: bool
    alone: bool


def attributed_elsewhere(conn: Connection, contact_id: int) -> list[Attributed]:
    """The messages in others' conversations (a Slack thread, a group) that
    ``contact_id`` wrote or that are attributed to them, in message-id order.

    Each conversation is read from the last reply before their first message there
    (nothing earlier is theirs; who wrote after that reply shares the next one) and
    only as far as a reply may still be attributed to them: past their last message,
    once someone else wrote with no reply to them in between, only a reply naming one
    of their messages can be, and those are looked up by ``in_reply_to_seq``. A
    group's years of history before or after them are not read (inside the write
    transaction of an erasure)."""
    spans = conn.execute(
        select(Message.conversation_id, func.min(Message.seq), func.max(Message.seq))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.contact_id == contact_id, Conversation.contact_id != contact_id)
        .group_by(Message.conversation_id)
        .order_by(Message.conversation_id)
    ).all()
    found: list[Attributed] = []
    for conversation_id, first, last in spans:
        start = conn.execute(
            select(func.max(Message.seq)).where(
                Message.conversation_id == conversation_id, Message.seq < first,
                Message.direction == Direction.OUTBOUND.value,
            )
        ).scalar()  # fmt: skip
        found.extend(_scan(conn, conversation_id, contact_id, start or 0, last))
    return sorted(found)


def _scan(
    conn: Connection, conversation_id: int, contact_id: int, start: int, last: int
) -> list[Attributed]:
    """``attributed_elsewhere`` in one conversation: read from seq ``start`` on;
    ``last`` is their last message's seq."""
    in_conversation = Message.conversation_id == conversation_id
    state = _Attribution(None, start - 1)
    theirs: list[int] = []  # their messages' seqs
    found: list[Attributed] = []
    after = start - 1  # read rows after this seq
    size = _FIRST
    while True:
        rows = conn.execute(
            select(*_LIGHT)
            .where(in_conversation, Message.seq > after)
            .order_by(Message.seq)
            .limit(size)
        ).all()
        jump: int | None = None
        for row in rows:
            after = row.seq
            answer = state.feed(row)
            if row.direction == Direction.INBOUND.value:
                if row.contact_id == contact_id:
                    theirs.append(row.seq)
                    found.append(Attributed(row.id, conversation_id, row.seq, False, True))
            elif answer is not None and contact_id in answer:
                alone = answer == {contact_id}
                found.append(Attributed(row.id, conversation_id, row.seq, True, alone))
            if row.seq < last:
                continue
            if contact_id in state.window:
                jump = _next_reply(conn, conversation_id, after)  # it answers them
            elif state.window or contact_id not in state.previous_set:
                jump = _next_reply_to(conn, conversation_id, after, theirs)
            else:
                continue  # nobody since a reply to them: the next one answers them too
            break
        else:
            if len(rows) == size:
                size = min(size * 2, _CHUNK)
                continue
            return found
        if jump is None:
            return found
        # Skipped: others' messages (up to the next reply, only customers'; up to a
        # reply naming theirs, it does not matter). Whether any, or any missing, lie
        # between tells whether the next reply answers them alone.
        between = conn.execute(
            select(func.count()).where(in_conversation, Message.seq > after, Message.seq < jump)
        ).scalar_one()
        if between:
            state.window.add(None)  # someone else
        if between != jump - after - 1:
            state.window.add(None)  # erased ones
        state.previous = after = jump - 1
        size = _FIRST


def _next_reply(conn: Connection, conversation_id: int, after: int) -> int | None:
    """The seq of the first reply after seq ``after``."""
    return conn.execute(
        select(func.min(Message.seq)).where(
            Message.conversation_id == conversation_id, Message.seq > after,
            Message.direction == Direction.OUTBOUND.value,
        )
    ).scalar()  # fmt: skip


def _next_reply_to(
    conn: Connection, conversation_id: int, after: int, seqs: list[int]
) -> int | None:
    """The seq of the first reply after seq ``after`` naming one of ``seqs``."""
    found: list[int] = []
    for at in range(0, len(seqs), _IN_LIST):
        seq = conn.execute(
            select(func.min(Message.seq)).where(
                Message.conversation_id == conversation_id, Message.seq > after,
                Message.in_reply_to_seq.in_(seqs[at : at + _IN_LIST]),
            )
        ).scalar()  # fmt: skip
        if seq is not None:
            found.append(seq)
    return min(found, default=None)
