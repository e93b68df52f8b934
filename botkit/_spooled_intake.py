"""Intake that keeps a message on local disk while the database is unavailable, and
stores the kept ones, in order, once it answers (for ``Bot.submit_or_keep``).

Order per conversation holds: while anything is kept, later messages are kept behind
it rather than stored ahead of it, until the spool is empty again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from botkit._backoff import doubling
from botkit._outage_spool import OutageSpool, SpooledMessage, SpoolFull
from botkit._replies import DATABASE_RETRY_S
from botkit.channel import IntakeReceipt
from botkit.errors import DatabaseUnavailableError, MessageRejectedError, StoreError
from botkit.events import InboundMessage
from botkit.store._database import one_call
from botkit.store.settings import StoreSettings

__all__ = ["SpooledIntake", "open_spool"]

_log = logging.getLogger("botkit.bot")

Submit = Callable[[InboundMessage], Awaitable[IntakeReceipt]]
# Whether the channel's conversation has messages stored: (channel, conversation key).
Exists = Callable[[str, str], Awaitable[bool]]
# Store a message as a human agent's reply (message, agent's name); False when it is
# not an agent's message there (see ``Bot.record_agent_message``).
RecordAgent = Callable[[InboundMessage, str], Awaitable[bool]]
Accepting = Callable[[], bool]


async def open_spool(settings: StoreSettings) -> OutageSpool | None:
    """The spool ``settings`` name, with what a previous run left in it; None when
    keeping is off. Says at start what would otherwise surprise in an outage."""
    if not settings.outage_spool_dir:
        return None
    spool = OutageSpool(
        Path(settings.outage_spool_dir), max_messages=settings.outage_spool_max_messages
    )
    left = await spool.load()
    if not await spool.writable():
        _log.warning(
            "outage_spool_dir %s is not writable: during a database outage, Slack and "
            "Telegram messages will be refused instead of kept",
            spool.directory,
        )
    if left:
        _log.warning(
            "%d messages kept during a database outage wait in %s: stored and answered "
            "once the connectors are up",
            left,
            spool.directory,
        )
    return spool


class SpooledIntake:
    """``submit`` with the spool in front of it.

    Args:
        spool: the directory of kept messages (loaded already); None: the spool is off
            (``submit`` alone).
        submit: ``Bot.submit``.
        exists: whether a conversation is stored.
        record_agent: stores an agent's reply on the channel.
        accepting: whether the bot accepts messages (False once it stops).
    """

    def __init__(
        self,
        spool: OutageSpool | None,
        submit: Submit,
        exists: Exists,
        record_agent: RecordAgent,
        accepting: Accepting,
    ) -> None:
        self.spool = spool
        self._submit = submit
        self._exists = exists
        self._record_agent = record_agent
        self._accepting = accepting
        # Whether the log has said that messages are kept, since the spool was empty.
        self._announced = False
        self._storing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    def start_storing(self) -> None:
        """Store kept messages from now on (the connectors must be up to answer them):
        by ``Bot.run`` once they are connected, and by a message kept meanwhile (its
        connector received it, so it is up)."""
        if self.spool is not None and (self._storing is None or self._storing.done()):
            self._storing = asyncio.create_task(
                self._store_kept_forever(self.spool), name="store-kept-messages"
            )

    async def close(self) -> None:
        """Stop storing kept messages (those left are stored by the next start)."""
        self._closed.set()
        task, self._storing = self._storing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_stored(self, within: float | None) -> bool:
        """Wait until no message is kept (all stored, so their replies are scheduled);
        False when some are still kept after ``within`` seconds or once this closes."""
        spool = self.spool
        if spool is None or spool.emptied.is_set():
            return True
        emptied = asyncio.create_task(spool.emptied.wait())
        closed = asyncio.create_task(self._closed.wait())
        try:
            await asyncio.wait(
                {emptied, closed}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            emptied.cancel()
            closed.cancel()
        return spool.emptied.is_set()

    async def submit_or_keep(
        self,
        message: InboundMessage,
        *,
        existing_conversation_only: bool,
        agent_name: str | None = None,
    ) -> IntakeReceipt | None:
        """Store ``message`` (see ``Bot.submit_or_keep``), or keep it when the database
        is unavailable or messages kept before it still wait. None: kept, stored as an
        agent's, or not for the bot (``existing_conversation_only`` and no such
        conversation)."""
        kept = SpooledMessage(
            message, existing_conversation_only=existing_conversation_only, agent_name=agent_name
        )
        if self.spool is None:
            return await self._store(kept)
        failure: DatabaseUnavailableError | None = None
        if not len(self.spool):
            try:
                return await self._store(kept)
            except DatabaseUnavailableError as exc:
                failure = exc  # also a commit that was cut: storing again is idempotent
        try:
            await self.spool.keep(kept)
        except SpoolFull as full:
            _log.warning("message %s not kept: %s", message.idempotency_key, full)
            if failure is not None:
                raise failure from full
            raise DatabaseUnavailableError(
                f"messages wait for the database and no more can be kept: {full}"
            ) from full
        if failure is not None and not self._announced:
            self._announced = True
            _log.warning(
                "the database is unavailable: %s messages are kept in %s and stored and "
                "answered once it answers",
                message.channel,
                self.spool.directory,
            )
        self.start_storing()
        return None

    async def _store(self, kept: SpooledMessage) -> IntakeReceipt | None:
        message = kept.message
        if kept.agent_name is not None and await self._record_agent(message, kept.agent_name):
            return None
        if kept.existing_conversation_only and not await self._exists(
            message.channel, message.conversation_key
        ):
            return None
        return await self._submit(message)

    async def _store_kept_forever(self, spool: OutageSpool) -> None:
        """Store the messages kept in ``spool`` (``self.spool``), oldest first, as they
        come; while the database is still away, try the oldest again every few seconds.
        Returns at shutdown (what is left is stored by the next start)."""
        stored = 0
        while True:
            await spool.added.wait()
            spool.added.clear()
            try:
                while (found := await spool.oldest()) is not None:
                    path, kept = found
                    if not await self._store_when_available(spool, path, kept):
                        return
                    await spool.forget(path)  # (a file set aside is gone already)
                    stored += 1
            except Exception as exc:
                # A bug or a disk failure must not leave the spool stuck: every message
                # would then be kept and none stored. Try again in a while.
                _log.error("storing kept messages failed: %s", exc, exc_info=exc)
                await asyncio.sleep(DATABASE_RETRY_S[1])
                spool.added.set()
                continue
            if stored:
                _log.warning("the %d messages kept on disk are stored", stored)
            stored, self._announced = 0, False

    async def _store_when_available(
        self, spool: OutageSpool, path: Path, kept: SpooledMessage
    ) -> bool:
        """Store one kept message, waiting for the database as long as it takes; False
        when the bot stops accepting messages (shutdown)."""
        delays = doubling(*DATABASE_RETRY_S)
        # This message's tries are one call to the store: a statement its
        # statement_timeout cancels every time is given up after a few of them (see
        # STATEMENT_CANCELS) and the message set aside, while one cancelled now and then
        # (a migration, an overload) is waited for. Per message, not per task: this
        # task stores every kept message, and their cancels must not add up.
        with one_call():
            while True:
                if not await asyncio.to_thread(path.exists):
                    # Removed while it waited (``botkit data forget`` erases its writer's
                    # kept messages, then the database): storing this copy would bring
                    # them back.
                    _log.info("kept message %s was removed: not stored", path.name)
                    return True
                try:
                    await self._store(kept)
                    return True
                except DatabaseUnavailableError as exc:
                    # (The store logs the outage once; this line is for who looks closely.)
                    _log.debug("kept message %s waits for the database: %s", path.name, exc)
                except MessageRejectedError as exc:
                    if not self._accepting():
                        return False  # stopping: the next start stores it
                    await spool.set_aside(path, f"is refused: {exc}")  # an edited file
                    return True
                except StoreError as exc:
                    # Not an outage: this message cannot be stored, and it must not hold
                    # up the ones behind it.
                    await spool.set_aside(path, f"cannot be stored: {exc}")
                    return True
                await asyncio.sleep(next(delays))
