"""Customers' ratings of the bot's replies: stored once per reply and person, and
summed up for the operator (the feedback plugin, ``botkit feedback``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from botkit.events import Direction, utcnow
from botkit.store import _queries as q
from botkit.store._retention import Retention
from botkit.store.models import Conversation, Feedback, Message
from botkit.store.records import MessageStatus, StoredMessage

__all__ = ["FeedbackReport", "FeedbackStore", "RatedReply", "Rating"]

Rating = Literal["good", "bad"]
# Replies looked at for the one being rated: the customer rates the newest reply that
# offered a rating, but an agent's message or a notice may have come after it.
_LOOK_BACK = 5


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
    ) -> int | None:
        """Record ``rating`` by the writer of ``inbound`` for the newest reply before it
        that ``offered`` a rating, replacing their earlier rating of that reply.

        Returns:
            The rated reply's ``seq``; None when no recent reply offered a rating (then
            nothing is stored).

        Raises:
            StoreError: the database failed.
        """
        if inbound.contact_id is None:
            return None
        contact_id = inbound.contact_id

        def work(conn: Connection) -> int | None:
            rows = conn.execute(
                select(*q.MESSAGE_COLS)
                .where(
                    Message.conversation_id == inbound.conversation_id,
                    Message.direction == Direction.OUTBOUND.value,
                    Message.seq < inbound.seq,
                    Message.status == MessageStatus.SENT.value,
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
            conn.execute(delete(Feedback).where(*mine))
            conn.execute(
                insert(Feedback).values(
                    conversation_id=inbound.conversation_id, reply_seq=reply.seq,
                    contact_id=contact_id, rating=rating, created_at=utcnow(),
                )
            )  # fmt: skip
            return reply.seq

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
