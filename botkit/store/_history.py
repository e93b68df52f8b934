"""Reading a conversation's newest messages for the model: from the in-memory window of
recent messages when it can answer, else from the database (reloading the window)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from botkit.store import _queries as q
from botkit.store._recent import HISTORY_STATUSES, MAX_DEPTH, RecentMessages
from botkit.store.models import Message
from botkit.store.records import StoredMessage

__all__ = ["newest_messages"]

T = TypeVar("T")


class Read(Protocol):
    """Runs a function of a connection in a read transaction (the store's ``_read``)."""

    def __call__(self, fn: Callable[[Connection], T], /) -> Awaitable[T]: ...


# Built once: statement construction costs more than running its cached compiled form.
# History leaves out what is not in HISTORY_STATUSES (a rejected message was never
# answered as such, a failed reply never reached the customer). The statuses are bound
# one parameter each: an expanding IN would be re-rendered on every execution.
_IN_HISTORY = sorted(status.value for status in HISTORY_STATUSES)
_HISTORY = (
    select(*q.MESSAGE_COLS)
    .where(
        Message.conversation_id == bindparam("cid"),
        Message.status.in_([bindparam(f"s{i}") for i in range(len(_IN_HISTORY))]),
    )
    .order_by(Message.seq.desc())
    .limit(bindparam("n"))
)
_HISTORY_STATUS_PARAMS = {f"s{i}": status for i, status in enumerate(_IN_HISTORY)}
# The newest messages whatever their status: what the in-memory window is loaded from.
_LATEST = (
    select(*q.MESSAGE_COLS)
    .where(Message.conversation_id == bindparam("cid"))
    .order_by(Message.seq.desc())
    .limit(bindparam("n"))
)


async def newest_messages(
    read: Read,
    recent: RecentMessages,
    conversation_id: int,
    max_turns: int,
    through_seq: int | None,
    through: StoredMessage | None = None,
) -> list[StoredMessage]:
    """The newest ``max_turns`` messages fit for history, newest first.

    Args:
        read: runs a function in a read transaction (the store's ``_read``).
        recent: the store's window of recent messages.
        conversation_id: the conversation.
        max_turns: how many.
        through_seq: the conversation is known to have reached this seq; without it the
            database is read.
        through: the message at ``through_seq`` (the one being answered), when known:
            the in-memory window must hold that very message there.
    """
    if through_seq is not None and recent.enabled and max_turns <= MAX_DEPTH:
        recent.want(max_turns)
        hit = recent.latest(conversation_id, through_seq, max_turns, through)
        if hit is not None:
            return hit
        # Reload the window: the newest messages whatever their status.
        depth = recent.depth
        latest: list[StoredMessage] | None = None
        recent.begin_reload(conversation_id)
        try:
            latest = await read(
                lambda conn: [
                    q.to_message(row)
                    for row in conn.execute(_LATEST, {"cid": conversation_id, "n": depth})
                ]
            )
        finally:
            recent.end_reload(conversation_id, latest)
        picked = [m for m in latest if m.status in HISTORY_STATUSES][:max_turns]
        if len(picked) == max_turns or len(latest) < depth:
            return picked  # enough, or the whole conversation was read
    params = {"cid": conversation_id, "n": max_turns, **_HISTORY_STATUS_PARAMS}
    rows = await read(lambda conn: conn.execute(_HISTORY, params).all())
    return [q.to_message(row) for row in rows]
