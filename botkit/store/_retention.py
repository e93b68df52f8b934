"""Keeping customers' data no longer than needed, and handing it over or erasing it on
request: retention, a contact's export, a contact's erasure.

* ``purge_inactive``: conversations with no activity since a cutoff, with their messages
  and files, and the contacts left with no conversation (``[store] retention_days``, run
  by the bot once an hour; ``botkit data purge``). The cutoff, and when a wrong clock
  refuses one: ``botkit/store/_retention_clock.py``.
* ``export_contact``: everything stored about one person on one channel, as JSON-ready
  data (``botkit data export``: a right-of-access request).
* ``forget_contact``: the person, their conversations, every message they wrote and the
  replies to them in others' (``botkit data forget``: an erasure request). Which reply
  answers whom: ``botkit/store/_replies.py``.

Rows are deleted children first (delivery keys, ratings, files, messages, conversations,
contacts) in batches, one transaction each, so a purge never holds a long lock. Deleted
conversations are dropped from this process's window of recent messages; other processes'
windows notice reused ids on their own (``botkit/store/_recent.py``).

A purge decides on a conversation once, in the transaction that first deletes from it,
under its row lock and after checking it is still inactive. One with more files than a
transaction deletes (``FILE_BATCH``) is *detached* in that transaction: its channel
becomes ``DETACHED`` (no message has that channel: ``check_key`` refuses it) and its key
its id, so the customer's next message opens a new conversation, as it would after the
purge, instead of landing in one that is losing its files (and then its messages). Later
transactions, and the next purge if this one stops, finish every detached conversation
whatever its activity.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Update, delete, exists, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from botkit.errors import StoreError
from botkit.events import Direction
from botkit.store import _queries as q
from botkit.store._checks import check_key
from botkit.store._recent import RecentMessages
from botkit.store._replies import answered, attributed_elsewhere
from botkit.store._retention_clock import RetentionClock
from botkit.store.models import (
    DETACHED,
    Contact,
    Conversation,
    CustomerFile,
    Feedback,
    InboundKey,
    Message,
)

__all__ = ["DETACHED", "Deleted", "Retention"]

log = logging.getLogger("botkit.store")

BATCH = 500  # conversations per transaction
# Kept files per transaction, deleted before their conversations: a file may be 20 MiB,
# and on SQLite a transaction freeing a batch of conversations' files at once would hold
# the one writer (every replica's writes) for seconds.
FILE_BATCH = 8


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a purge or an erasure deleted (``files``: customers' files kept in the
    store, see ``keep_customer_file``)."""

    contacts: int = 0
    conversations: int = 0
    messages: int = 0
    files: int = 0

    def __add__(self, other: Deleted) -> Deleted:
        return Deleted(
            self.contacts + other.contacts,
            self.conversations + other.conversations,
            self.messages + other.messages,
            self.files + other.files,
        )


def _delete_conversations(conn: Connection, ids: Sequence[int]) -> Deleted:
    """Delete the conversations ``ids`` with their messages and files."""
    if not ids:
        return Deleted()
    in_them = select(Message.id).where(Message.conversation_id.in_(ids))
    conn.execute(delete(InboundKey).where(InboundKey.message_id.in_(in_them)))
    conn.execute(delete(Feedback).where(Feedback.conversation_id.in_(ids)))
    files = conn.execute(delete(CustomerFile).where(CustomerFile.conversation_id.in_(ids)))
    messages = conn.execute(delete(Message).where(Message.conversation_id.in_(ids))).rowcount
    conversations = conn.execute(delete(Conversation).where(Conversation.id.in_(ids))).rowcount
    return Deleted(0, conversations, messages, files.rowcount)


def _detach(conversation_id: int) -> Update:
    """The UPDATE that takes a conversation out of its customer's reach (idempotent)."""
    return (
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.channel != DETACHED)
        .values(channel=DETACHED, conversation_key=str(conversation_id))
    )


def _file_records(conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
    """Metadata of a conversation's kept files; the bytes are not part of an export."""
    rows = conn.execute(
        select(CustomerFile.id, CustomerFile.name, CustomerFile.media_type, CustomerFile.size,
               CustomerFile.created_at)
        .where(CustomerFile.conversation_id == conversation_id)
        .order_by(CustomerFile.id)
    ).all()  # fmt: skip
    return [
        {
            "id": r.id,
            "name": r.name,
            "media_type": r.media_type,
            "size": r.size,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def _message_record(row: Any) -> dict[str, Any]:
    message = q.to_message(row)
    record: dict[str, Any] = {
        # With seq, what log lines name a message by ("web:2 seq=1": channel:id).
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "direction": str(message.direction),
        "text": message.text,
        "working_text": message.working_text,
        "language": message.language,
        "status": str(message.status),
        "agent": message.agent,
        "created_at": message.created_at.isoformat(),
    }
    extra = row.extra if isinstance(row.extra, dict) else {}
    if extra.get("attachments"):
        record["attachments"] = extra["attachments"]  # names, types, sizes, links
    if message.source is not None:  # a bot's reply: the model's, or what stood in for it
        record["source"] = message.source
    # Not ``source_error``: the failure a busy / fallback reply stood in for is operator
    # data (a backend's host name, URL, server reply), shown by ``botkit conversations
    # show``, not handed to the customer with their data.
    return record


def _theirs(rows: Sequence[Any], contact_id: int, owner: int | None) -> list[Any]:
    """Of one conversation's ``rows`` (in seq order, see ``answered``), the messages
    ``contact_id`` wrote and the replies attributed to them alone."""
    answers = answered(rows, owner)
    alone = frozenset({contact_id})  # never a reply that may carry others' data
    return [
        r
        for r in rows
        if (r.contact_id == contact_id if r.direction == Direction.INBOUND.value
            else answers.get(r.seq) == alone)
    ]  # fmt: skip


def _elsewhere(conn: Connection, contact_id: int) -> list[Any]:
    """What ``contact_id`` wrote in others' conversations (a Slack channel thread) and
    the replies to it there, in the order they were stored."""
    ids = [a.id for a in attributed_elsewhere(conn, contact_id) if a.alone]
    found: list[Any] = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found += conn.execute(select(*q.MESSAGE_COLS).where(Message.id.in_(chunk))).all()
    return sorted(found, key=lambda r: r.id)


class Retention(RetentionClock):
    """The store's data-protection operations (see the module docstring)."""

    _recent: RecentMessages  # the store's window of recent messages (ConversationStore)

    async def purge_inactive(self, before: datetime) -> Deleted:
        """Delete conversations last active before ``before`` with their messages, then
        contacts last seen before it that have no conversation left.

        Raises:
            StoreError: the database failed (what earlier batches deleted stays deleted).
        """

        inactive = Conversation.updated_at < before
        detached = Conversation.channel == DETACHED

        def batch(conn: Connection) -> tuple[Deleted, list[int]]:
            # Locked (PostgreSQL): a message arriving for one of them waits for this
            # transaction and then opens a new conversation, instead of being deleted
            # with the old one. Rows being written right now are skipped: active.
            ids = list(
                conn.execute(
                    select(Conversation.id)
                    .where(or_(inactive, detached))
                    .order_by(Conversation.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            return _delete_conversations(conn, ids), ids

        total = await self._delete_files_in(inactive, purge=True)
        # A detached one skipped above is finished here, waiting for its row: a write
        # that waited for the row while it was detached may hold it a moment longer
        # (PostgreSQL locks the row it then finds no longer matching).
        total += await self._delete_files_in(detached, purge=True, wait=True)
        while True:
            done, ids = await self._write(batch)
            self._recent.forget(ids)
            total += done
            if len(ids) < BATCH:
                break
        return total + Deleted(contacts=await self._delete_orphaned_contacts(before))

    async def _delete_orphaned_contacts(self, before: datetime) -> int:
        """Delete contacts last seen before ``before`` with nothing left: no
        conversation, and no message of theirs in anyone else's (a Slack thread) that
        export and erasure must still find. ``BATCH`` per transaction, in id order: one
        statement over every contact took 1.34 s at a million, scanning contacts and
        conversations in one transaction. Returns how many were deleted."""
        orphaned = (
            Contact.updated_at < before,
            ~exists(select(Conversation.id).where(Conversation.contact_id == Contact.id)),
            ~exists(select(Message.id).where(Message.contact_id == Contact.id)),
        )

        def pick(conn: Connection, after: int) -> list[int]:
            return list(
                conn.execute(
                    select(Contact.id)
                    .where(Contact.id > after, *orphaned)
                    .order_by(Contact.id)
                    .limit(BATCH)
                ).scalars()
            )

        def batch(conn: Connection, after: int) -> tuple[int, int | None]:
            ids = pick(conn, after)
            if not ids:
                return 0, None
            # Checked again in the delete: one may have opened a conversation since.
            gone = conn.execute(delete(Contact).where(Contact.id.in_(ids), *orphaned)).rowcount
            return gone, (ids[-1] if len(ids) == BATCH else None)

        deleted, after = 0, 0
        while True:
            try:
                gone, last = await self._write(partial(batch, after=after))
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
                # A returning customer opened a conversation meanwhile (the foreign key
                # refuses the delete): this batch is left for the next purge, which looks
                # again; the contacts after it are still deleted now.
                log.info("retention: %d contacts left for the next purge: %s", BATCH, exc)
                ids = await self._read(partial(pick, after=after))
                gone, last = 0, (ids[-1] if len(ids) == BATCH else None)
            deleted += gone
            if last is None:
                return deleted
            after = last

    async def _delete_files_in(
        self, conversations: ColumnElement[bool], *, purge: bool = False, wait: bool = False
    ) -> Deleted:
        """Delete the kept files of the ``conversations`` matching, ``FILE_BATCH`` per
        transaction, one conversation at a time in id order (locked, as the purge locks
        it: one being written to right now is skipped, and its conversation's own delete
        then takes its files).

        With ``purge``, the purge's decision on a conversation is made once, in the
        first transaction that deletes from it, under its lock and the check of
        ``conversations``: a customer writing to it meanwhile either comes first and
        keeps it whole, or waits and opens a new one. The transaction deleting its last
        files deletes the conversation too; one with more files than that is detached
        first (see the module docstring), and detached conversations are finished
        whatever ``conversations`` says. With ``wait``, a conversation locked by
        another transaction is waited for instead of skipped. Returns what was
        deleted."""
        with_files = exists(
            select(CustomerFile.id).where(CustomerFile.conversation_id == Conversation.id)
        )
        wanted = or_(conversations, Conversation.channel == DETACHED) if purge else conversations

        def batch(conn: Connection, *, first: int) -> tuple[Deleted, int | None]:
            conversation_id = conn.execute(
                select(Conversation.id)
                .where(wanted, with_files, Conversation.id >= first)
                .order_by(Conversation.id)
                .limit(1)
                .with_for_update(skip_locked=not wait)
            ).scalar()
            if conversation_id is None:
                return Deleted(), None
            of_it = CustomerFile.conversation_id == conversation_id
            ids = list(
                conn.execute(select(CustomerFile.id).where(of_it).limit(FILE_BATCH + 1)).scalars()
            )
            if purge and len(ids) <= FILE_BATCH:
                return _delete_conversations(conn, [conversation_id]), conversation_id
            if purge:
                conn.execute(_detach(conversation_id))
            chunk = delete(CustomerFile).where(CustomerFile.id.in_(ids[:FILE_BATCH]))
            return Deleted(files=conn.execute(chunk).rowcount), conversation_id

        total, first = Deleted(), 0
        while True:
            done, at = await self._write(partial(batch, first=first))
            if at is None:
                return total
            total, first = total + done, at
            if done.conversations:
                self._recent.forget([at])

    async def forget_contact(self, channel: str, external_id: str) -> Deleted:
        """Erase one person: their contact, the conversations they started (with every
        message in them), and what they wrote in anyone else's (a Slack channel thread)
        with the bot's and agents' replies to it.
        Nothing found deletes nothing.

        Raises:
            StoreError: bad channel or id, or the database failed.
        """
        check_key(channel, "channel", channel=True)
        check_key(external_id, "contact id")
        person = select(Contact.id).where(
            Contact.channel == channel, Contact.external_id == external_id
        )
        files = await self._delete_files_in(Conversation.contact_id.in_(person))

        def work(conn: Connection) -> tuple[Deleted, list[int]]:
            contact_id = conn.execute(person).scalar()
            if contact_id is None:
                return Deleted(), []
            ids = list(
                conn.execute(
                    select(Conversation.id).where(Conversation.contact_id == contact_id)
                ).scalars()
            )
            done = _delete_conversations(conn, ids)
            theirs = select(Message.id).where(Message.contact_id == contact_id)
            # Others' conversations they wrote in: their windows of recent messages hold
            # these messages too.
            elsewhere = set(
                conn.execute(
                    select(Message.conversation_id).where(Message.contact_id == contact_id)
                ).scalars()
            )
            ids.extend(elsewhere)
            # The bot's and agents' replies to them there, found before their messages
            # go (which reply answers whom is read from them): a reply often repeats
            # what it answers ("Noted b@y.com"), and the thread's owner would otherwise
            # get it in their export.
            replies = [(a.id, a.conversation_id, a.seq)
                       for a in attributed_elsewhere(conn, contact_id) if a.reply]  # fmt: skip
            conn.execute(delete(InboundKey).where(InboundKey.message_id.in_(theirs)))
            conn.execute(delete(Feedback).where(Feedback.contact_id == contact_id))
            messages = 0
            for start in range(0, len(replies), BATCH):
                chunk = replies[start : start + BATCH]
                reply_ids = [message_id for message_id, _, _ in chunk]
                conn.execute(delete(InboundKey).where(InboundKey.message_id.in_(reply_ids)))
                seqs: defaultdict[int, list[int]] = defaultdict(list)
                for _, conversation_id, seq in chunk:
                    seqs[conversation_id].append(seq)
                for conversation_id, its in seqs.items():  # others' ratings of them
                    rated = (Feedback.conversation_id == conversation_id,
                             Feedback.reply_seq.in_(its))  # fmt: skip
                    conn.execute(delete(Feedback).where(*rated))
                messages += conn.execute(delete(Message).where(Message.id.in_(reply_ids))).rowcount
            written = delete(Message).where(Message.contact_id == contact_id)
            messages += conn.execute(written).rowcount
            conn.execute(delete(Contact).where(Contact.id == contact_id))
            return done + Deleted(contacts=1, messages=messages), ids

        done, ids = await self._write(work)
        done += files
        self._recent.forget(ids)
        return done

    async def export_contact(self, channel: str, external_id: str) -> dict[str, Any] | None:
        """Everything stored about one person, as JSON-ready data; None when there is
        no such contact.

        The files they sent that the store keeps (web uploads) are listed per
        conversation by their metadata only (id, name, media type, size, time): their
        bytes are not in the export; ``customer_file`` reads each by its id.

        Raises:
            StoreError: bad channel or id, or the database failed.
        """
        check_key(channel, "channel", channel=True)
        check_key(external_id, "contact id")

        def work(conn: Connection) -> dict[str, Any] | None:
            contact = conn.execute(
                select(
                    Contact.id, Contact.channel, Contact.external_id, Contact.display_name,
                    Contact.language, Contact.created_at,
                ).where(Contact.channel == channel, Contact.external_id == external_id)
            ).first()  # fmt: skip
            if contact is None:
                return None
            conversations = []
            owned = conn.execute(
                select(*q.CONVERSATION_COLS)
                .where(Conversation.contact_id == contact.id)
                .order_by(Conversation.id)
            ).all()
            for row in owned:
                record = q.to_conversation(row)
                rows = conn.execute(
                    select(*q.MESSAGE_COLS)
                    .where(Message.conversation_id == record.id)
                    .order_by(Message.seq)
                ).all()
                # Others who wrote in it (a Slack channel thread) are not theirs to get,
                # nor the replies to anyone but them (which may repeat what others
                # wrote): see botkit/store/_replies.py.
                own = _theirs(rows, contact.id, contact.id)
                conversations.append(
                    {
                        "id": record.id,  # as logs and `botkit conversations` show it
                        "conversation_key": record.key,
                        "status": str(record.status),
                        "language": record.language,
                        "created_at": record.created_at.isoformat(),
                        "messages": [_message_record(m) for m in own],
                        "others_messages_withheld": len(rows) - len(own),
                        "files": _file_records(conn, record.id),
                    }
                )
            elsewhere = _elsewhere(conn, contact.id)
            ratings = conn.execute(
                select(Conversation.channel, Conversation.conversation_key,
                       Feedback.conversation_id, Feedback.reply_seq,
                       Feedback.rating, Feedback.created_at)
                .join(Conversation, Conversation.id == Feedback.conversation_id)
                .where(Feedback.contact_id == contact.id)
                .order_by(Feedback.id)
            ).all()  # fmt: skip
            return {
                "channel": contact.channel,
                "external_id": contact.external_id,
                "display_name": contact.display_name,
                "language": contact.language,
                "created_at": contact.created_at.isoformat(),
                "conversations": conversations,
                "messages_in_other_conversations": [_message_record(m) for m in elsewhere],
                "ratings": [
                    {
                        "channel": r.channel,
                        "conversation_key": r.conversation_key,
                        "conversation_id": r.conversation_id,
                        "reply_seq": r.reply_seq,
                        "rating": r.rating,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in ratings
                ],
            }

        return await self._read(work)
