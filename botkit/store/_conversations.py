"""Conversations and contacts as the store keeps them: looked up, listed by status, and
their status and language changed (a mixin of ``ConversationStore``)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from botkit.errors import StoreError, UnknownConversationError
from botkit.events import utcnow
from botkit.store import _queries as q
from botkit.store._checks import check_key, check_language, status_of
from botkit.store._handoffs import ConversationTakenError, HandoffReads, agent_holding
from botkit.store.models import Contact, Conversation
from botkit.store.records import ContactRecord, ConversationRecord, ConversationStatus

__all__ = ["MAX_PAGE", "Conversations"]

MAX_PAGE = 1000  # most rows one listing call returns (messages, conversations)

log = logging.getLogger("botkit.store")


class Conversations(HandoffReads):
    """Reads and changes of conversations and contacts (see ``ConversationStore``)."""

    async def get_conversation(self, channel: str, key: str) -> ConversationRecord | None:
        """The conversation (channel, key), or None if no message created it yet."""
        stmt = select(*q.CONVERSATION_COLS).where(
            Conversation.channel == channel, Conversation.conversation_key == key
        )
        row = await self._read(lambda conn: conn.execute(stmt).first())
        return None if row is None else q.to_conversation(row)

    async def move_conversation(self, channel: str, old_key: str, new_key: str) -> bool:
        """Give the conversation (channel, ``old_key``) the key ``new_key``: the chat it
        lives in got a new id (a Telegram group upgraded to a supergroup).

        One UPDATE of the conversation row. Everything else follows it by the
        conversation's id: its messages, files, ratings, language, status (an agent
        holding it, its place in the hand-off queue) and the in-memory history window.

        Idempotent: False, with nothing changed, when no conversation has ``old_key``
        (already moved, by this process or another one at the same moment: the row
        lock orders the two, and the second finds no row) or when ``old_key`` equals
        ``new_key``. When a conversation has ``new_key`` already (a message written in
        the new chat was stored before the move), both are left as they are and False
        is returned, with a warning: merging two histories would renumber messages
        that channels and agents have seen.

        Raises:
            StoreError: a bad key, or the database failed.
        """
        check_key(channel, "channel", channel=True)
        check_key(old_key, "conversation key")
        check_key(new_key, "conversation key")
        if old_key == new_key:
            return False

        def keyed(conn: Connection, key: str) -> bool:
            stmt = select(Conversation.id).where(
                Conversation.channel == channel, Conversation.conversation_key == key
            )
            return conn.execute(stmt).first() is not None

        def work(conn: Connection) -> bool | None:
            if not keyed(conn, old_key):
                return False  # moved already (or never stored): nothing to do
            if keyed(conn, new_key):
                # Checked before the UPDATE only to tell this case apart: the unique
                # constraint on (channel, conversation_key) is what refuses it for
                # sure, also when the other conversation is being created meanwhile.
                return None
            stmt = (
                update(Conversation)
                .where(Conversation.channel == channel, Conversation.conversation_key == old_key)
                .values(conversation_key=new_key)
                .returning(Conversation.id)
            )
            return conn.execute(stmt).first() is not None

        try:
            moved = await self._write(work)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            moved = None  # a conversation under new_key was created at the same moment
        if moved is None:
            log.warning(
                "%s conversation %r was not moved to %r: that key has a conversation "
                "already; both are kept",
                channel, old_key[:80], new_key[:80],
            )  # fmt: skip
            return False
        if moved:
            log.info("%s conversation %r is now %r", channel, old_key[:80], new_key[:80])
        return moved

    async def conversations_with_status(
        self,
        statuses: Collection[str],
        *,
        limit: int = 100,
        oldest_first: bool = False,
        after: tuple[datetime, int] | None = None,
    ) -> list[ConversationRecord]:
        """Conversations in any of ``statuses``, most recently active first (e.g. those
        waiting for or handled by a human); ``oldest_first`` for a queue: the longest in
        their status first (``status_since``; a customer writing again while waiting
        keeps their place).

        Args:
            statuses: the statuses wanted.
            limit: the most returned (at most ``MAX_PAGE``).
            oldest_first: the order.
            after: continue after the conversation with this ``(time, id)`` in that order
                (the last one of the previous page; the time is its ``status_since``
                oldest first, else its ``updated_at``).

        Raises:
            StoreError: an unknown status.
        """
        states = [status_of(ConversationStatus, s).value for s in statuses]
        limit = max(1, min(int(limit), MAX_PAGE))
        when = q.waiting_since() if oldest_first else Conversation.updated_at
        order = (
            (when.asc(), Conversation.id.asc())
            if oldest_first
            else (when.desc(), Conversation.id.desc())
        )
        # The statuses as literals, not parameters: PostgreSQL uses the partial
        # ix_conversations_handoff_queue only when it can prove the query's statuses are
        # within the index's, which a generic plan of a prepared statement cannot.
        listed: BindParameter[str] = bindparam(
            "statuses", states, expanding=True, literal_execute=True
        )
        stmt = select(*q.CONVERSATION_COLS).where(Conversation.status.in_(listed))
        if after is not None:
            at, last_id = after
            if oldest_first:
                later = (when > at) | ((when == at) & (Conversation.id > last_id))
            else:
                later = (when < at) | ((when == at) & (Conversation.id < last_id))
            stmt = stmt.where(later)
        stmt = stmt.order_by(*order).limit(limit)
        rows = await self._read(lambda conn: conn.execute(stmt).all())
        return [q.to_conversation(r) for r in rows]

    async def conversation_by_id(self, conversation_id: int) -> ConversationRecord:
        """The conversation as stored now.

        Raises:
            StoreError: no conversation with that id.
        """
        row = await self._read(lambda conn: q.get_conversation(conn, conversation_id))
        if row is None:
            raise UnknownConversationError(f"no conversation with id {conversation_id}")
        return row

    async def get_contact(self, contact_id: int) -> ContactRecord | None:
        """A contact by id, or None."""
        return await self._read(lambda conn: q.get_contact(conn, contact_id))

    async def customer_language(self, conversation: ConversationRecord) -> str | None:
        """The language to write to the conversation's customer in: the conversation's,
        else (nothing detected in it yet) the contact's, which a channel's hint or an
        earlier conversation gave; None when neither is known."""
        if conversation.language is not None:
            return conversation.language
        contact = await self.get_contact(conversation.contact_id)
        return None if contact is None else contact.language

    async def set_conversation_status(
        self, conversation_id: int, status: str
    ) -> ConversationRecord:
        """Hand a conversation to a human, back to the bot, or close it.

        Raises:
            StoreError: unknown conversation or status.
        """
        state = status_of(ConversationStatus, status)
        return await self._update_conversation(
            conversation_id, **q.status_set(state.value, utcnow())
        )

    async def change_conversation_status(
        self,
        conversation_id: int,
        status: str,
        *,
        only_from: Collection[str],
        only_agent: str | None = None,
    ) -> ConversationRecord | None:
        """Set the status only if it is still one of ``only_from``, in one statement, so
        two agents (or an agent and the customer's /bot) cannot both act on a status
        they read before the other changed it.

        Args:
            only_agent: also only if no other agent has the conversation (nobody, or
                this agent; names compared ignoring case, as ``append_outbound``'s
                ``exclusive`` does), checked in the same transaction: an agent giving a
                conversation back cannot give back one another agent's first message
                made theirs after the agent looked.

        Returns:
            The conversation as now stored, or None when its status was not in
            ``only_from`` (nothing changed).

        Raises:
            StoreError: unknown conversation or status.
            ConversationTakenError: ``only_agent``, and another agent has it (nothing
                changed).
        """
        state = status_of(ConversationStatus, status).value
        allowed = [status_of(ConversationStatus, s).value for s in only_from]

        def work(conn: Connection) -> ConversationRecord | str | None:
            if only_agent is not None:
                # Lock the row first: an agent's message locks it too (its seq is
                # claimed) before the holder is read, so whose it is cannot change
                # between our read and our update. On PostgreSQL the read is its own
                # statement, made after the lock is granted: READ COMMITTED then sees
                # the message committed while we waited, which a subquery of the UPDATE
                # (read at the statement's start) would not. SQLite's write transaction
                # holds the database's one write lock already.
                locked = conn.execute(
                    select(Conversation.id)
                    .where(Conversation.id == conversation_id)
                    .with_for_update()
                ).first()
                if locked is None:
                    raise UnknownConversationError(f"no conversation with id {conversation_id}")
                holder = agent_holding(conn, conversation_id)
                if holder is not None and holder.casefold() != only_agent.casefold():
                    return holder  # nothing written: no rollback needed
            now = utcnow()
            stmt = (
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.status.in_(allowed))
                .values(updated_at=now, **q.status_set(state, now))
                .returning(*q.CONVERSATION_COLS)
            )
            row = conn.execute(stmt).first()
            if row is not None:
                return q.to_conversation(row)
            if q.get_conversation(conn, conversation_id) is None:
                raise UnknownConversationError(f"no conversation with id {conversation_id}")
            return None

        changed = await self._write(work)
        if isinstance(changed, str):
            raise ConversationTakenError(conversation_id, changed)
        return changed

    async def set_conversation_language(
        self, conversation_id: int, language: str | None
    ) -> ConversationRecord:
        """Set the customer's language for this conversation (what replies are sent in).

        Raises:
            StoreError: unknown conversation or a malformed language tag.
        """
        check_language(language)
        return await self._update_conversation(conversation_id, language=language)

    async def set_contact_language(self, contact_id: int, language: str | None) -> ContactRecord:
        """Set a contact's preferred language (used for their future conversations).

        Raises:
            StoreError: unknown contact or a malformed language tag.
        """
        check_language(language)

        def work(conn: Connection) -> ContactRecord:
            stmt = (
                update(Contact)
                .where(Contact.id == contact_id)
                .values(language=language, updated_at=utcnow())
                .returning(*q.CONTACT_COLS)
            )
            row = conn.execute(stmt).first()
            if row is None:
                raise StoreError(f"no contact with id {contact_id}")
            return q.to_contact(row)

        return await self._write(work)

    async def _update_conversation(
        self, conversation_id: int, **values: object
    ) -> ConversationRecord:
        def work(conn: Connection) -> ConversationRecord:
            stmt = (
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(updated_at=utcnow(), **values)
                .returning(*q.CONVERSATION_COLS)
            )
            row = conn.execute(stmt).first()
            if row is None:
                raise UnknownConversationError(f"no conversation with id {conversation_id}")
            return q.to_conversation(row)

        return await self._write(work)
