"""Finding conversations for an operator (``botkit conversations``): by channel, status,
time, text, or a customer message nobody answered; and one conversation's messages
(a mixin of ``ConversationStore``).

Time windows go through the primary key, not ``created_at`` (which has no index of its
own): message ids rise with the time they were stored, so a binary search of a few
primary-key probes turns ``--since``/``--until`` into an id range, and only the rows in
that range are read. Ids are handed out in insertion order while ``created_at`` comes
from the writing host's clock, so the range is widened by ``CLOCK_SLACK`` and the
exact times are then checked on each row. A text search has no index to use (a
substring, in any language): it reads the messages of the range, at most ``max_scan``
of the newest, and says so (``SearchResult.scanned`` and ``truncated``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from botkit.errors import StoreError, UnknownConversationError
from botkit.events import Direction
from botkit.store import _queries as q
from botkit.store._checks import check_key, status_of
from botkit.store._conversations import MAX_PAGE
from botkit.store._database import Database
from botkit.store.models import Contact, Conversation, Message
from botkit.store.records import (
    ConversationRecord,
    ConversationStatus,
    MessageStatus,
    StoredMessage,
)

__all__ = [
    "CLOCK_SLACK",
    "MAX_SCAN",
    "MAX_SEARCH_TEXT",
    "PROBE_ROWS",
    "ConversationSearch",
    "FoundConversation",
    "SearchResult",
    "ShownMessage",
    "search_text",
]

# How far a message's stored time may be off its id's place in time (replicas' clocks;
# the store warns at 5 s of skew, see botkit/_clock_check.py).
CLOCK_SLACK = timedelta(minutes=10)
# The most messages one search reads (the newest of its time range): a text search of
# 200,000 took 0.26-0.43 s on SQLite (0.3-0.36 s on PostgreSQL), --unanswered 0.6 s
# (0.19 s), on the development machine (docs/operations.md, "Finding a conversation";
# a 2-hour window: 30 ms).
MAX_SCAN = 200_000
# The longest text searched for: far longer than anyone types, and within SQLite's
# limit on a LIKE pattern (50,000 bytes).
MAX_SEARCH_TEXT = 1000
# The rows each probe of a ``--since``/``--until`` search reads (see ``_first_id_from``):
# a few rows stored with a far-off clock cannot move the range; still one index read.
PROBE_ROWS = 16


@dataclass(frozen=True, slots=True)
class FoundConversation:
    """A conversation found, with how many messages it holds and the message that
    matched (its newest one that did; with no message filter, its newest message)."""

    conversation: ConversationRecord
    messages: int
    match: StoredMessage | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What ``find_conversations`` found, newest first.

    Attributes:
        found: the conversations.
        scanned: the message ids read, ``(first, last)``, when message filters were
            used (None when only conversations were listed, or no message is in range).
        truncated: the range held more than ``max_scan`` messages: older ones were not
            read (narrow it with ``since``).
    """

    found: list[FoundConversation]
    scanned: tuple[int, int] | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ShownMessage:
    """A message of ``conversation_messages`` with who wrote an inbound one: their id
    on the channel and display name (None: erased, or a reply)."""

    message: StoredMessage
    writer: str | None
    writer_name: str | None


def search_text(value: str) -> str:
    """``value`` if it can be searched for.

    Raises:
        StoreError: empty, over ``MAX_SEARCH_TEXT`` characters, a NUL or a lone
            surrogate (no stored message holds either).
    """
    if not value:
        raise StoreError("the text to search for is empty")
    if len(value) > MAX_SEARCH_TEXT:
        raise StoreError(
            f"the text to search for is {len(value)} characters long; at most "
            f"{MAX_SEARCH_TEXT} are searched for"
        )
    if "\x00" in value:
        raise StoreError("the text to search for contains a NUL character; no message has one")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError("the text to search for is not valid Unicode text") from None
    return value


def _utc(when: datetime | None) -> datetime | None:
    """``when`` with a time zone (UTC when it has none), to compare with stored times."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _first_id_from(conn: Connection, when: datetime, lo: int, hi: int, *, late: bool) -> int:
    """The smallest id in ``lo..hi`` from which messages were stored at or after
    ``when`` (``hi + 1`` when none was): a binary search of primary-key probes, ~log2
    of the range (18 for 200,000 ids), each one index range read of ``PROBE_ROWS`` rows.

    One row's time is not trusted alone: a message stored by a host whose clock was far
    off would move the whole range (and ``since``/``until`` would miss what it holds,
    untruncated). A probe reads ``PROBE_ROWS`` rows from ``mid`` and takes the newest of
    their times for ``since`` (``late=False``: the range may start too early, never
    too late) or the oldest for ``until`` (``late=True``: it may end too late, never
    too early), so only ``PROBE_ROWS`` bad rows in a row can mislead it; every row of
    the range is still checked against the exact times."""
    start, end = lo, hi + 1
    pick = min if late else max
    while start < end:
        mid = (start + end) // 2
        rows = conn.execute(
            select(Message.id, Message.created_at)
            .where(Message.id >= mid, Message.id <= hi)
            .order_by(Message.id)
            .limit(PROBE_ROWS)
        ).all()
        if not rows or pick(r.created_at for r in rows) >= when:
            end = mid
        else:
            start = rows[0].id + 1
    return start


def _replied() -> ColumnElement[bool]:
    """A reply that reached the customer after the inbound message ``Message``: sent,
    later in the conversation, and answering it or a later message (an agent's message
    answers none in particular). Read by the (conversation_id, seq) unique index."""
    reply = aliased(Message)
    return exists().where(
        reply.conversation_id == Message.conversation_id,
        reply.seq > Message.seq,
        reply.direction == Direction.OUTBOUND.value,
        reply.status == MessageStatus.SENT.value,
        or_(reply.in_reply_to_seq.is_(None), reply.in_reply_to_seq >= Message.seq),
    )


class ConversationSearch(Database):
    """Operators' searches of the conversations (see the module docstring)."""

    async def find_conversations(
        self,
        *,
        channel: str | None = None,
        statuses: Collection[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        unanswered: bool = False,
        limit: int = 50,
        max_scan: int = MAX_SCAN,
    ) -> SearchResult:
        """Conversations matching every filter given, newest first.

        With only ``channel`` and ``statuses``, conversations are listed by their last
        activity. With a message filter, a conversation is found by its messages: one
        stored between ``since`` and ``until`` whose text or working-language text
        contains ``text`` (case-insensitively: any letter on PostgreSQL with a UTF-8
        ``LC_CTYPE``, whose ``lower()`` folds only ASCII letters under ``C``, ASCII
        letters on SQLite; ``%`` and ``_`` are plain characters), or, with ``unanswered``, a
        customer message no sent reply followed (none, or only failed ones); ordered
        by their newest such message.

        Args:
            channel: only this channel's.
            statuses: only conversations in one of these (``ConversationStatus``).
            since: a message stored at or after this time (one without a time zone
                is UTC).
            until: a message stored at or before this time.
            text: a message containing this text (see ``search_text``).
            unanswered: a customer message left without a sent reply.
            limit: the most returned (at most ``MAX_PAGE``).
            max_scan: the most messages read (the newest of the time range).

        Raises:
            StoreError: an unknown status, a channel or text that cannot be searched
                for, or the database failed.
        """
        if channel is not None:
            check_key(channel, "channel", channel=True)
        states = [status_of(ConversationStatus, s).value for s in statuses]
        if text is not None:
            text = search_text(text)
        limit = max(1, min(int(limit), MAX_PAGE))
        max_scan = max(1, int(max_scan))
        since, until = _utc(since), _utc(until)
        where: list[ColumnElement[bool]] = []
        if channel is not None:
            where.append(Conversation.channel == channel)
        if states:
            where.append(Conversation.status.in_(states))
        if text is None and since is None and until is None and not unanswered:
            return SearchResult(await self._read(lambda conn: _latest(conn, where, limit)))
        if since is not None:
            where.append(Message.created_at >= since)
        if until is not None:
            where.append(Message.created_at <= until)
        if text is not None:
            where.append(
                or_(
                    Message.text.icontains(text, autoescape=True),
                    Message.working_text.icontains(text, autoescape=True),
                )
            )
        if unanswered:
            where.append(Message.direction == Direction.INBOUND.value)

        def work(conn: Connection) -> SearchResult:
            # Two statements: SQLite reads min() or max() alone off the primary key,
            # but both in one SELECT by scanning the table (70 ms at 200,000 rows).
            first = conn.execute(select(func.min(Message.id))).scalar()
            last = conn.execute(select(func.max(Message.id))).scalar()
            if first is None or last is None:
                return SearchResult([])
            if since is not None:
                first = _first_id_from(conn, since - CLOCK_SLACK, first, last, late=False)
            if until is not None:
                last = _first_id_from(conn, until + CLOCK_SLACK, first, last, late=True) - 1
            if first > last:
                return SearchResult([])
            truncated = last - first + 1 > max_scan
            if truncated:
                first = last - max_scan + 1
            newest = (
                select(Message.conversation_id.label("cid"), func.max(Message.id).label("hit"))
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.id >= first, Message.id <= last, *where)
                .group_by(Message.conversation_id)
                .subquery()
            )
            stmt = select(newest.c.cid, newest.c.hit)
            if unanswered:
                # Only each conversation's newest matching customer message is checked
                # (one index probe per conversation, not per message): a sent reply
                # after it answers every earlier one too (see ``_replied``), so the
                # conversation has an unanswered match exactly when that one is.
                stmt = stmt.join(Message, Message.id == newest.c.hit).where(~_replied())
            hits = conn.execute(stmt.order_by(newest.c.hit.desc()).limit(limit)).all()
            found = _details(conn, {row.cid: row.hit for row in hits})
            return SearchResult(found, (first, last), truncated)

        return await self._read(work)

    async def conversation_messages(
        self, conversation_id: int, *, after_seq: int = 0, limit: int = MAX_PAGE
    ) -> list[ShownMessage]:
        """A conversation's messages with ``seq > after_seq``, oldest first (at most
        ``limit``, capped at ``MAX_PAGE``), each with who wrote it.

        Raises:
            UnknownConversationError: no conversation with that id.
        """
        limit = max(1, min(int(limit), MAX_PAGE))

        def work(conn: Connection) -> list[ShownMessage]:
            if q.get_conversation(conn, conversation_id) is None:
                raise UnknownConversationError(f"no conversation with id {conversation_id}")
            rows = conn.execute(
                select(*q.MESSAGE_COLS)
                .add_columns(
                    Contact.external_id.label("w_id"), Contact.display_name.label("w_name")
                )
                .outerjoin(Contact, Contact.id == Message.contact_id)
                .where(Message.conversation_id == conversation_id, Message.seq > after_seq)
                .order_by(Message.seq)
                .limit(limit)
            ).all()
            return [ShownMessage(q.to_message(r), r.w_id, r.w_name) for r in rows]

        return await self._read(work)


def _latest(
    conn: Connection, where: list[ColumnElement[bool]], limit: int
) -> list[FoundConversation]:
    """Conversations by last activity, each with its newest message (the one at its
    ``last_seq``, read by the (conversation_id, seq) index). Reads the conversations
    table (one row per conversation, far fewer than messages) and sorts it."""
    rows = conn.execute(
        select(Conversation.id)
        .where(*where)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(limit)
    ).all()
    ids = [row.id for row in rows]
    newest = conn.execute(
        select(Message.conversation_id, Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.id.in_(ids), Message.seq == Conversation.last_seq)
    ).all()
    hits: dict[int, int | None] = dict.fromkeys(ids)
    hits.update({row.conversation_id: row.id for row in newest})
    return _details(conn, hits)


def _details(conn: Connection, hits: dict[int, Any]) -> list[FoundConversation]:
    """The conversations of ``hits`` (id -> matching message id or None), in its order,
    with their message counts and matching messages."""
    if not hits:
        return []
    ids = list(hits)
    conversations = {
        row.id: q.to_conversation(row)
        for row in conn.execute(select(*q.CONVERSATION_COLS).where(Conversation.id.in_(ids)))
    }
    counts: dict[int, int] = {
        row.conversation_id: row.n
        for row in conn.execute(
            select(Message.conversation_id, func.count().label("n"))
            .where(Message.conversation_id.in_(ids))
            .group_by(Message.conversation_id)
        )
    }
    wanted = [m for m in hits.values() if m is not None]
    matches = {
        row.id: q.to_message(row)
        for row in conn.execute(select(*q.MESSAGE_COLS).where(Message.id.in_(wanted)))
    }
    return [
        FoundConversation(conversations[c], counts.get(c, 0), matches.get(hits[c]))
        for c in ids
        if c in conversations  # deleted meanwhile (a purge between the two reads)
    ]
