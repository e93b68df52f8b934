"""The conversation store: contacts, conversations and append-only messages in SQL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from botkit._token_estimate import estimate_tokens
from botkit.errors import StoreError, UnknownConversationError
from botkit.events import Button, Direction, InboundMessage, utcnow
from botkit.store import _queries as q
from botkit.store._checks import (
    check_agent_name,
    check_key,
    check_language,
    check_text,
    clean_error,
    language_hint,
    status_of,
)
from botkit.store._conversations import MAX_PAGE, Conversations
from botkit.store._database import UPGRADE_COMMAND
from botkit.store._handoffs import ConversationTakenError, HandoffEndedError, agent_holding
from botkit.store._history import newest_messages
from botkit.store._outage import sqlstate
from botkit.store._recent import RecentMessages
from botkit.store._search import ConversationSearch
from botkit.store._session_keys import SessionKeys
from botkit.store._unanswered import Unanswered, find_unanswered
from botkit.store.models import Conversation, Message
from botkit.store.records import (
    ConversationRecord,
    ConversationStatus,
    InboundFinish,
    IntakeResult,
    MessageStatus,
    StoredMessage,
)
from botkit.store.settings import StoreSettings

__all__ = ["MAX_PAGE", "UPGRADE_COMMAND", "ConversationStore", "approx_tokens"]

_SEQ_MAX = 2**31 - 1  # sequence numbers are 32-bit integers in the schema

log = logging.getLogger("botkit.store")

_RACES = 4


def approx_tokens(text: str) -> int:
    """Default token estimate for history budgets: ~4 characters per token in English,
    ~1 per character in Chinese, Japanese, Korean and Thai (``estimate_tokens``)."""
    return estimate_tokens(text)


class _DuplicateRace(Exception):
    """Another transaction stored the same delivery key while ours was running."""


class _ContactGone(Exception):
    """The contact intake read was deleted (the retention purge's orphaned contacts,
    ``botkit data forget``) before the rows naming it were written (PostgreSQL: a
    foreign-key violation). Intake goes round again and creates the contact anew."""


# SQLSTATE foreign_key_violation.
_FK_VIOLATION = "23503"


class ConversationStore(Conversations, SessionKeys, ConversationSearch):
    """Async access to the conversation database.

    Use as ``async with ConversationStore(settings) as store`` or call ``open``/``close``,
    then ``ensure_schema`` once (see ``Database``). Methods raise ``StoreError`` (never a
    driver exception) and their messages never contain the database password. Message
    rows are append-only: only a message's ``status`` and ``error`` change later, an
    inbound message gets its language and working-language text when the bot is done,
    and an agent's message written on the channel gets its translation once the bot has
    posted it (``add_translation``).

    The latest messages of active conversations are also kept in memory (bounded by
    ``history_cache_mb``) so that ``history`` rarely reads the database; see
    ``botkit/store/_recent.py`` for why its answers equal the database's.
    """

    def __init__(self, settings: StoreSettings | None = None) -> None:
        super().__init__(settings)
        self._recent = RecentMessages(self.settings.history_cache_mb * 2**20)

    @property
    def history_cache(self) -> RecentMessages:
        """The in-memory window of recent messages (hit/miss counters, size)."""
        return self._recent

    async def close(self) -> None:
        """Close every connection and forget the cached messages."""
        self._recent.clear()
        await super().close()

    async def intake(
        self,
        msg: InboundMessage,
        *,
        text: str,
        working_text: str | None = None,
        language: str | None = None,
        rejected: bool = False,
        claimed_by: str | None = None,
    ) -> IntakeResult:
        """Store an inbound message exactly once per channel delivery key.

        Creates the contact and the conversation when they are new (a new conversation
        starts in the contact's preferred language, if known) and appends the message
        with the next sequence number; the delivery key is recorded in the same
        transaction. A key seen before stores nothing and returns the original message with
        ``duplicate=True`` — also when two deliveries arrive at the same moment.

        Args:
            msg: the message as the connector delivered it (``msg.text`` is not stored).
            text: the sanitized text to store; it must contain no NUL or lone surrogate.
            working_text: the text in the conversation's working language, if translated.
            language: the detected language of ``text``.
            rejected: store it with status ``rejected`` (e.g. over the length limit).
            claimed_by: the id of the process that will answer it (see
                ``register_process``), stored in the same INSERT; None leaves it to
                whichever process recovers it.

        Raises:
            StoreError: empty or over-long keys, unstorable text, or a database failure.
        """
        check_key(msg.channel, "channel", channel=True)
        check_key(msg.conversation_key, "conversation key")
        check_key(msg.contact.external_id, "contact id")
        check_key(msg.idempotency_key, "idempotency key")
        check_text(text, "text")
        if working_text is not None:
            check_text(working_text, "working text")
        check_language(language)
        hint = language_hint(msg.contact.language_hint)
        extra = q.inbound_extra(msg)
        status = MessageStatus.REJECTED if rejected else MessageStatus.RECEIVED

        def lookup(conn: Connection) -> IntakeResult | None:
            found = q.find_inbound(conn, msg.channel, msg.idempotency_key)
            return None if found is None else _duplicate(conn, *found)

        def work(conn: Connection) -> IntakeResult:
            found = lookup(conn)
            if found is not None:
                return found
            now = utcnow()
            # Read without a lock: a purge may delete the contact before the rows that
            # name it are written. That is rare (2 intakes in 500 racing a purge of the
            # same customer), so it is caught and retried rather than prevented with a
            # FOR KEY SHARE lock, which would write a lock into the contact's row (WAL,
            # a multixact under a burst) on every intake.
            contact = q.get_or_create_contact(conn, msg.contact, hint, now)
            try:
                conv, new = q.claim_seq(conn, msg.channel, msg.conversation_key, contact, now)
                message = q.insert_message(
                    conn,
                    {
                        "conversation_id": conv.id,
                        "seq": conv.last_seq,
                        "direction": Direction.INBOUND.value,
                        "contact_id": contact.id,
                        "text": text,
                        "working_text": working_text,
                        "language": language,
                        "status": status.value,
                        "idempotency_key": msg.idempotency_key,
                        "extra": extra,
                        "created_at": now,
                        "claimed_by": claimed_by,
                    },
                )
            except IntegrityError as exc:
                if sqlstate(exc) == _FK_VIOLATION:
                    raise _ContactGone from exc  # rolls back
                raise
            if not q.insert_inbound_key(conn, msg.channel, msg.idempotency_key, message.id, now):
                raise _DuplicateRace  # rolls back our message and its sequence number
            # Reopened by this message: its claim set status_changed_at to this intake's
            # time, which only a status change by this very UPDATE does.
            reopened = not new and conv.status_changed_at == now
            return IntakeResult(
                conv, message, duplicate=False, new_conversation=new, contact=contact,
                reopened=reopened,
            )  # fmt: skip

        for _ in range(_RACES):
            try:
                result = await self._write(work)
            except _DuplicateRace:
                again = await self._read(lookup)
                if again is not None:
                    return again
                continue
            except _ContactGone:
                continue  # the next round creates the contact again
            if not result.duplicate:
                self._recent.record(result.message)
            return result
        raise StoreError(f"could not store delivery {msg.idempotency_key[:80]!r}: kept conflicting")

    async def append_outbound(
        self,
        conversation_id: int,
        text: str,
        *,
        working_text: str | None = None,
        language: str | None = None,
        in_reply_to_seq: int | None = None,
        status: str = "sent",
        buttons: tuple[Button, ...] = (),
        error: str | None = None,
        finish: InboundFinish | None = None,
        agent: str | None = None,
        delivery_key: str | None = None,
        exclusive: bool = False,
        held_since: datetime | None = None,
        held_seq: int | None = None,
        source: str | None = None,
        source_error: str | None = None,
    ) -> StoredMessage:
        """Append a reply (from the bot or a human agent) to a conversation.

        Args:
            conversation_id: the conversation.
            text: the text as sent to the customer (in their language).
            working_text: the same text in the working language (what the model wrote).
            language: the language of ``text``.
            in_reply_to_seq: ``seq`` of the inbound message this answers.
            status: ``sent`` or ``failed`` (any ``MessageStatus``).
            buttons: quick replies sent with it.
            error: why delivery failed, for a ``failed`` reply.
            finish: record that the bot is done with the inbound message answered, in the
                same transaction (what ``finish_inbound`` does, without a second one).
            agent: a human agent wrote it: the name they gave ("" for none), at most
                ``MAX_AGENT_NAME`` characters.
            delivery_key: the channel's delivery id, when the channel delivered this
                message (an agent writing in a Slack thread): stored once per key, like
                intake; a key seen before stores nothing and returns the first message.
            exclusive: with ``agent``, store it only if no other agent has the
                conversation (``botkit.store._handoffs``; names compared ignoring case),
                checked in the same transaction.
            held_since: store it only if the conversation is still ``with_human`` in the
                hand-off that entered that status then (the ``status_since`` of the
                takeover that preceded this message), checked in the same transaction:
                one given back to the bot (and perhaps handed over again) since is not
                written into.
            held_seq: the same by the takeover's ``status_seq`` (the conversation's
                ``last_seq`` when it entered ``with_human``), which no clock moves: a
                hand-off that ended with any message stored since is told apart even
                where a host's clock gave the new one the old one's ``status_since``.
                Give both: a release and a new takeover with no message between leave
                ``status_seq`` as it was, and only the time tells them apart.
            source: what produced the bot's reply (``Reply.source``: ``backend`` for
                the model, ``busy`` / ``fallback`` when that reply took the model's
                place, ``too_long``, ``rate_limited``...), kept with it so that "the
                model failed" reads apart from "answered".
            source_error: for a ``busy`` / ``fallback`` reply, the failure it stands
                for (kept to ``MAX_SOURCE_ERROR`` characters).

        Raises:
            StoreError: unknown conversation or status, unstorable text, database failure.
            ConversationTakenError: ``exclusive``, and another agent has it (nothing
                stored).
            HandoffEndedError: ``held_since`` or ``held_seq``, and that hand-off is over
                (nothing stored).
            UnknownConversationError: no such conversation, or ``finish``'s message was
                erased (nothing stored).
        """
        check_text(text, "text")
        if working_text is not None:
            check_text(working_text, "working text")
        check_language(language)
        state = status_of(MessageStatus, status)
        if agent is not None:
            check_agent_name(agent)
        extra = q.outbound_extra(tuple(buttons), agent, source=source, source_error=source_error)
        error = clean_error(error)
        if finish is not None:
            _check_finish(finish)

        if delivery_key is not None:
            check_key(delivery_key, "delivery key")

        def delivered_before(conn: Connection) -> StoredMessage | None:
            if delivery_key is None:
                return None
            conv = q.get_conversation(conn, conversation_id)
            found = None if conv is None else q.find_inbound(conn, conv.channel, delivery_key)
            return None if found is None else found[1]

        def work(conn: Connection) -> tuple[StoredMessage, bool, StoredMessage | None]:
            before = delivered_before(conn)
            if before is not None:
                return before, True, None
            now = utcnow()
            conv = q.claim_seq_by_id(conn, conversation_id, now)  # locks the row
            # The claim's UPDATE holds the row lock a release's UPDATE (or its SELECT ...
            # FOR UPDATE) needs, and returns the row as it is once that lock is granted
            # (PostgreSQL re-reads a row changed while it waited; SQLite has one writer):
            # a release committed before is seen here, one after waits for this message.
            held = held_since is not None or held_seq is not None
            if held and (
                conv.status != ConversationStatus.WITH_HUMAN
                or (held_seq is not None and conv.status_seq != held_seq)
                or (held_since is not None and conv.status_since != held_since)
            ):
                raise HandoffEndedError(conversation_id, conv.status)  # rolls back
            if exclusive and agent:
                holder = agent_holding(conn, conversation_id)
                if holder is not None and holder.casefold() != agent.casefold():
                    raise ConversationTakenError(conversation_id, holder)  # rolls back
            finished = None if finish is None else _apply_finish(conn, finish)
            if finish is not None and finished is None:
                # The message it answers was erased (``botkit data forget`` of its
                # writer, in someone else's conversation) while it was written: stored
                # now, it would answer nobody and no erasure could find it again.
                raise UnknownConversationError(
                    f"message {finish.message.id} that conversation {conversation_id}'s"
                    " reply answers was erased"
                )  # rolls back
            message = q.insert_message(
                conn,
                {
                    "conversation_id": conversation_id,
                    "seq": conv.last_seq,
                    "direction": Direction.OUTBOUND.value,
                    "contact_id": None,
                    "text": text,
                    "working_text": working_text,
                    "language": language,
                    "status": state.value,
                    "idempotency_key": delivery_key,
                    "error": error,
                    "in_reply_to_seq": in_reply_to_seq,
                    "extra": extra,
                    "created_at": now,
                },
            )
            if delivery_key is not None and not q.insert_inbound_key(
                conn, conv.channel, delivery_key, message.id, now
            ):
                raise _DuplicateRace  # rolls back our copy
            return message, False, finished

        for _ in range(_RACES):
            try:
                stored, duplicate, finished = await self._write(work)
                break
            except _DuplicateRace:
                again = await self._read(delivered_before)
                if again is not None:
                    return again
        else:
            raise StoreError("could not store an agent message: its delivery kept conflicting")
        if duplicate:
            return stored
        if finished is not None:
            self._recent.update(finished)  # as stored: ``finish.message`` may be older
        self._recent.record(stored)
        return stored

    async def set_message_status(
        self, message_id: int, status: str, error: str | None = None
    ) -> StoredMessage:
        """Change a message's status (e.g. received → answered, sent → failed).

        Returns:
            The message as now stored.

        Raises:
            StoreError: unknown message or status.
        """
        state = status_of(MessageStatus, status)
        reason = clean_error(error)
        stored = await self._write(lambda conn: _set_status(conn, message_id, state, reason))
        self._recent.update(stored)
        return stored

    async def add_translation(
        self, message: StoredMessage, text: str, *, language: str
    ) -> StoredMessage | None:
        """Record that an outbound message written on the channel (an agent's reply in
        a customer's Slack thread) reaches the customer translated too: ``text`` in
        ``language``, with the message as written kept as ``working_text`` (what
        pivot-mode replies store). Only once: None when it has a translation already
        (another process is posting one), so exactly one caller posts it.

        Raises:
            StoreError: unknown or inbound message, unstorable text or language.
        """
        check_text(text, "text")
        check_language(language)
        return await self._set_translation(
            message, Message.working_text.is_(None), text=text, working_text=message.text,
            language=language,
        )  # fmt: skip

    async def remove_translation(self, message: StoredMessage) -> StoredMessage | None:
        """Undo ``add_translation`` (its post failed): ``message`` as it was written.

        Raises:
            StoreError: the database failed.
        """
        return await self._set_translation(
            message, Message.working_text.is_not(None), text=message.text, working_text=None,
            language=message.language,
        )  # fmt: skip

    async def _set_translation(
        self, message: StoredMessage, condition: ColumnElement[bool], **values: object
    ) -> StoredMessage | None:
        stmt = (
            update(Message)
            .where(
                Message.id == message.id,
                Message.direction == Direction.OUTBOUND.value,
                condition,
            )
            .values(**values)
            .returning(*q.MESSAGE_COLS)
        )

        def work(conn: Connection) -> StoredMessage | None:
            row = conn.execute(stmt).first()
            return None if row is None else q.to_message(row)

        stored = await self._write(work)
        if stored is not None:
            self._recent.update(stored)
        return stored

    async def fail_reply(
        self, reply_id: int, error: str, *, reopen_inbound_id: int | None = None
    ) -> StoredMessage:
        """Mark a stored reply ``failed`` and, in the same transaction, move the message
        it answered from ``answered`` back to ``received`` (``reopen_inbound_id``), so the
        next start answers it again: a reply stored but cut off before it reached the
        customer.

        Raises:
            StoreError: unknown reply.
        """
        reason = clean_error(error)

        def work(conn: Connection) -> tuple[StoredMessage, StoredMessage | None]:
            failed = _set_status(conn, reply_id, MessageStatus.FAILED, reason)
            reopened = None
            if reopen_inbound_id is not None:
                stmt = (
                    update(Message)
                    .where(
                        Message.id == reopen_inbound_id,
                        Message.status == MessageStatus.ANSWERED.value,
                    )
                    .values(status=MessageStatus.RECEIVED.value)
                    .returning(*q.MESSAGE_COLS)
                )
                again = conn.execute(stmt).first()
                reopened = None if again is None else q.to_message(again)
            return failed, reopened

        reply, reopened = await self._write(work)
        self._recent.update(reply)
        if reopened is not None:
            self._recent.update(reopened)
        return reply

    async def history(
        self,
        conversation_id: int,
        *,
        max_turns: int,
        token_budget: int,
        count_tokens: Callable[[str], int] | None = None,
        through_seq: int | None = None,
        through: StoredMessage | None = None,
    ) -> list[StoredMessage]:
        """The recent messages to show the model, oldest first.

        A turn is one message, either direction. At most ``max_turns`` are read (the query
        has a LIMIT; the conversation is never loaded whole), then the oldest are dropped
        until the rest fit ``token_budget``, counted on ``StoredMessage.model_text``. The
        result is contiguous: it stops at the first message, walking back in time, that
        does not fit. Rejected inbound messages and failed replies are left out.

        Args:
            conversation_id: the conversation.
            max_turns: most messages returned.
            token_budget: most tokens returned, as counted by ``count_tokens``.
            count_tokens: tokenizer length function; default ~4 characters per token.
            through_seq: the caller knows the conversation has reached this seq (e.g. the
                message being answered): the in-memory window may answer when it holds
                every message up to it. Without it the database is always read.
            through: the message being answered (instead of ``through_seq``): the
                window must also hold that very message at its seq (see
                ``botkit/store/_recent.py`` on deleted conversations' reused ids).
        """
        if max_turns <= 0 or token_budget <= 0:
            return []
        count = count_tokens or approx_tokens
        newest = await newest_messages(
            self._read,
            self._recent,
            conversation_id,
            min(max_turns, _SEQ_MAX),
            through.seq if through is not None else through_seq,
            through,
        )
        picked: list[StoredMessage] = []
        used = 0
        for message in newest:
            used += count(message.model_text)
            if used > token_budget:
                break
            picked.append(message)
        picked.reverse()
        return picked

    async def messages_after(
        self, channel: str, conversation_key: str, after_seq: int, limit: int = 100
    ) -> list[StoredMessage]:
        """Messages of a conversation with ``seq > after_seq``, oldest first.

        For a channel catching up (e.g. a reconnecting web widget). ``limit`` is capped at
        ``MAX_PAGE``; a negative ``after_seq`` means from the start. An unknown
        conversation has no messages.
        """
        limit = min(limit, MAX_PAGE)
        if limit <= 0 or after_seq >= _SEQ_MAX:
            return []
        stmt = (
            select(*q.MESSAGE_COLS)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.channel == channel,
                Conversation.conversation_key == conversation_key,
                Message.seq > max(after_seq, 0),  # a seq from a client may be anything
            )
            .order_by(Message.seq)
            .limit(limit)
        )
        rows = await self._read(lambda conn: conn.execute(stmt).all())
        return [q.to_message(row) for row in rows]

    async def delivered(self, channel: str, delivery_key: str) -> StoredMessage | None:
        """The message stored under the channel's delivery id, if any (see ``intake`` and
        ``append_outbound(delivery_key=...)``)."""
        found = await self._read(lambda conn: q.find_inbound(conn, channel, delivery_key))
        return None if found is None else found[1]

    async def reply_target(self, conversation_id: int) -> dict[str, str]:
        """The channel ids of the conversation's newest customer message (a Telegram chat,
        a Slack channel and thread...): where a message the bot starts must go. Empty
        when the customer has written nothing yet."""
        stmt = (
            select(Message.extra)
            .where(
                Message.conversation_id == conversation_id,
                Message.direction == Direction.INBOUND.value,
            )
            .order_by(Message.seq.desc())
            .limit(1)
        )
        extra = await self._read(lambda conn: conn.execute(stmt).scalar())
        ids = (extra or {}).get("channel_ids") or {}
        return {str(k): str(v) for k, v in ids.items()} if isinstance(ids, dict) else {}

    async def finish_inbound(
        self, finish: InboundFinish, *, only_while: Collection[str] | None = None
    ) -> bool:
        """Record that the bot is done with an inbound message, in one write.

        Fills in what the pipeline learned after intake (the message's language and its
        working-language text, when given) and moves it from ``received`` to
        ``answered``; messages left ``received`` are found by ``unanswered``. The text
        itself stays as received.

        Args:
            finish: the message and what was learned about it.
            only_while: record it only while the conversation's status is one of these
                (a compare-and-set in the same statement): a message kept for the
                human agent is theirs only if no release came first.

        Returns:
            Whether it was recorded (False: no such message, or with ``only_while`` the
            conversation's status was another; the message is left as it was).

        Raises:
            StoreError: a malformed language tag, unstorable text or an unknown status.
        """
        _check_finish(finish)
        states = None
        if only_while is not None:
            states = [status_of(ConversationStatus, s).value for s in only_while]
        done = await self._write(lambda conn: _apply_finish(conn, finish, states))
        if done is not None:
            # As stored: a caller's copy older than the row (a second finish from
            # intake's copy) would put back what an earlier finish filled in.
            self._recent.update(done)
        return done is not None

    async def unanswered(
        self,
        *,
        since: datetime,
        limit: int = 1000,
        stale_before: datetime | None = None,
        unclaimed_before: datetime | None = None,
        exclude_claimer: str | None = None,
    ) -> list[Unanswered]:
        """Inbound messages stored since ``since`` whose processing has not finished
        (oldest first, at most ``limit``).

        Args:
            since: the oldest ``created_at`` returned.
            limit: at most this many (capped at ``MAX_PAGE``).
            stale_before: only messages nobody is answering: claimed by a process whose
                row is gone or whose heartbeat is older than this, or not claimed at
                all (stored by a version before claims, or by a store user that does
                not claim). Each result says whether its claimer still has a row
                (``claimer_registered``).
            unclaimed_before: with ``stale_before``, unclaimed messages only if stored
                before this (their writer may still be answering them; no heartbeat
                tells). None: every unclaimed message.
            exclude_claimer: with ``stale_before``, also leave out the messages this
                process (the caller) claimed; unclaimed messages stay in.
        """
        limit = max(1, min(int(limit), MAX_PAGE))
        return await self._read(
            lambda conn: find_unanswered(
                conn,
                since,
                limit,
                stale_before=stale_before,
                unclaimed_before=unclaimed_before,
                me=exclude_claimer,
            )
        )


def _set_status(
    conn: Connection, message_id: int, status: MessageStatus, error: str | None
) -> StoredMessage:
    stmt = (
        update(Message)
        .where(Message.id == message_id)
        .values(status=status.value, error=error)
        .returning(*q.MESSAGE_COLS)
    )
    row = conn.execute(stmt).first()
    if row is None:
        raise StoreError(f"no message with id {message_id}")
    return q.to_message(row)


def _duplicate(conn: Connection, conv: ConversationRecord, message: StoredMessage) -> IntakeResult:
    contact = None if message.contact_id is None else q.get_contact(conn, message.contact_id)
    return IntakeResult(conv, message, duplicate=True, new_conversation=False, contact=contact)


def _check_finish(finish: InboundFinish) -> None:
    check_language(finish.language)
    if finish.working_text is not None:
        check_text(finish.working_text, "working text")


def _apply_finish(
    conn: Connection, finish: InboundFinish, only_while: list[str] | None = None
) -> StoredMessage | None:
    return q.finish_inbound(conn, finish.message, finish.language, finish.working_text, only_while)
