"""Customers' ratings of the bot's replies: stored once per reply and person, and
summed up for the operator (the feedback plugin, ``botkit feedback``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from botkit.events import Direction, utcnow
from botkit.store import _queries as q
from botkit.store._retention import Retention
from botkit.store.models import Conversation, Feedback, Message
from botkit.store.records import MessageStatus, StoredMessage

__all__ = ["FeedbackReport", "FeedbackStore", "Rated", "RatedReply", "Rating"]

Rating = Literal["good", "bad"]
# Messages looked at for the one being rated: for a click, replies to the message it
# names (an answer and notices sent in its place); for a typed thumb, the newest that
# offered a rating, past customers' messages and the confirmations of other people's
# ratings (a shared Slack thread) sent since.
_LOOK_BACK = 50


@dataclass(frozen=True, slots=True)
class Rated:
    """What ``rate_reply`` rated: the reply, and the person's rating of it before."""

    reply: StoredMessage
    previous: Rating | None


@dataclass(frozen=True, slots=True)
class RatedReply:
    """A reply rated "bad", for the operator to look at."""

    channel: str
    conversation_key: str
    reply_seq: int
    text: str
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """Ratings since a time: counts per channel and the latest bad ones."""

    counts: dict[str, dict[Rating, int]]
    latest_bad: list[RatedReply]


class FeedbackStore(Retention):
    """The store's feedback operations (see the module docstring)."""

    async def rate_reply(
        self,
        inbound: StoredMessage,
        rating: Rating,
        offered: Callable[[StoredMessage], bool],
        *,
        answering: int | None = None,
        is_rating: Callable[[StoredMessage], bool] = lambda message: False,
    ) -> Rated | None:
        """Record ``rating`` by the writer of ``inbound`` for a reply that ``offered`` a
        rating, replacing their earlier rating of that reply.

        Args:
            inbound: the stored rating message.
            rating: "good" or "bad".
            offered: whether a stored reply offered the rating that was given.
            answering: the ``seq`` of the customer message the rated reply answers (what
                a rating button names); None rates the newest reply before ``inbound``
                that offered a rating (a thumb typed by hand), but only when nothing
                came after that reply but customers' messages and the bot's replies
                to ratings, and the conversation's status has not changed since
                (``_typed_target``).
            is_rating: whether a stored customer message was a rating (its reply, the
                thanks or the sorry, does not hide the answer it rated).

        Returns:
            The rated reply and the person's previous rating of it; None when no such
            reply offered a rating, or a typed thumb came after someone else's word
            (then nothing is stored).

        Raises:
            StoreError: the database failed.
        """
        if inbound.contact_id is None:
            return None
        contact_id = inbound.contact_id

        def work(conn: Connection) -> Rated | None:
            if answering is None:
                reply = _typed_target(conn, inbound, offered, is_rating)
            else:
                rows = conn.execute(
                    select(*q.MESSAGE_COLS)
                    .where(
                        Message.conversation_id == inbound.conversation_id,
                        Message.direction == Direction.OUTBOUND.value,
                        Message.seq < inbound.seq,
                        Message.status == MessageStatus.SENT.value,
                        Message.in_reply_to_seq == answering,
                    )
                    .order_by(Message.seq.desc())
                    .limit(_LOOK_BACK)
                ).all()
                reply = next((m for m in map(q.to_message, rows) if offered(m)), None)
            if reply is None:
                return None
            mine = (
                Feedback.conversation_id == inbound.conversation_id,
                Feedback.reply_seq == reply.seq,
                Feedback.contact_id == contact_id,
            )
            previous = conn.execute(select(Feedback.rating).where(*mine)).scalar()
            # One statement: two replicas taking two clicks at once must not both insert.
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            now = utcnow()
            conn.execute(
                insert(Feedback)
                .values(
                    conversation_id=inbound.conversation_id, reply_seq=reply.seq,
                    contact_id=contact_id, rating=rating, created_at=now,
                )
                .on_conflict_do_update(
                    index_elements=["conversation_id", "reply_seq", "contact_id"],
                    set_={"rating": rating, "created_at": now},
                )
            )  # fmt: skip
            return Rated(reply, cast("Rating | None", previous))

        return await self._write(work)

    async def feedback_report(self, since: datetime, *, latest_bad: int = 20) -> FeedbackReport:
        """Ratings given since ``since``: counts per channel and rating, and the
        ``latest_bad`` newest bad ratings with the replies they rated.

        Raises:
            StoreError: the database failed.
        """

        def work(conn: Connection) -> FeedbackReport:
            counts: dict[str, dict[Rating, int]] = {}
            rows = conn.execute(
                select(Conversation.channel, Feedback.rating, func.count())
                .join(Conversation, Conversation.id == Feedback.conversation_id)
                .where(Feedback.created_at >= since)
                .group_by(Conversation.channel, Feedback.rating)
            ).all()
            for channel, rating, count in rows:
                counts.setdefault(channel, {"good": 0, "bad": 0})[cast(Rating, rating)] = count
            bad = conn.execute(
                select(Conversation.channel, Conversation.conversation_key, Feedback.reply_seq,
                       Message.text, Feedback.created_at)
                .join(Conversation, Conversation.id == Feedback.conversation_id)
                .join(Message, (Message.conversation_id == Feedback.conversation_id)
                      & (Message.seq == Feedback.reply_seq))
                .where(Feedback.created_at >= since, Feedback.rating == "bad")
                .order_by(Feedback.created_at.desc(), Feedback.id.desc())
                .limit(latest_bad)
            ).all()  # fmt: skip
            return FeedbackReport(counts, [RatedReply(*row) for row in bad])

        return await self._read(work)


def _typed_target(
    conn: Connection,
    inbound: StoredMessage,
    offered: Callable[[StoredMessage], bool],
    is_rating: Callable[[StoredMessage], bool],
) -> StoredMessage | None:
    """The reply a thumb typed by hand rates: the newest that offered a rating, if it is
    still the last word. Anyone else's word since makes the thumb ambiguous ("thanks"
    for a colleague's help, for an intent's answer), so it rates nothing: a reply that
    offered no rating (an agent's message, a fixed answer, a hand-off confirmation, a
    notice) other than the bot's reply to a rating, or a change of who handles the
    conversation (a hand-off, ``/bot``, a release, a close and reopening).
    """
    rows = conn.execute(
        select(*q.MESSAGE_COLS)
        .where(Message.conversation_id == inbound.conversation_id, Message.seq < inbound.seq)
        .order_by(Message.seq.desc())
        .limit(_LOOK_BACK)
    ).all()
    messages = [q.to_message(row) for row in rows]
    ratings = {m.seq for m in messages if m.direction == Direction.INBOUND and is_rating(m)}
    for message in messages:
        if message.direction == Direction.INBOUND or message.status != MessageStatus.SENT:
            continue  # the customers' own words; what never reached them
        if offered(message):
            changed = conn.execute(
                select(Conversation.status_changed_at).where(
                    Conversation.id == inbound.conversation_id
                )
            ).scalar()
            # Rows from before the store kept the time (NULL) cannot tell: rated.
            return None if changed is not None and changed > message.created_at else message
        if message.agent is not None or message.in_reply_to_seq not in ratings:
            return None
    return None
