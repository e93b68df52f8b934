"""The bot's reply tasks: one per stored message, in stored order per conversation.

Keeps what shutdown needs to know: which replies are running (to drain them within the
grace period, then cancel). That recovery never answers a message this process is
answering is the store's claim (``messages.claimed_by``, see ``botkit/_resume.py``);
``schedule`` still ignores a message that already has a reply task, as a second line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from botkit._backoff import doubling
from botkit._intake import ConversationLocks
from botkit.events import InboundMessage
from botkit.log_context import bind_message
from botkit.store import DatabaseUnavailableError
from botkit.store._database import one_call
from botkit.store.records import IntakeResult

__all__ = ["Answer", "ReplyTasks"]

_log = logging.getLogger("botkit.bot")

# Seconds between tries to answer a message while the database is unavailable: the first
# wait, doubled up to the second. A try that finds it still away costs one failed read.
DATABASE_RETRY_S = (0.5, 5.0)

# Produces and records the reply to one stored message (called under its
# conversation's lock): (message, intake, too_long, queued, turn_at, read_at). ``queued``
# says another reply of the conversation was running or waiting when the message was
# scheduled: that reply may have changed the conversation (a hand-off, a language), so
# ``intake.conversation`` may be stale. ``turn_at`` is ``time.monotonic()`` when the
# message's turn came (its conversation's earlier replies done), before any wait for a
# new conversation's subscribers: what the customer waits from (metrics). ``read_at`` is
# the clock of ``LiveReplies.now()`` taken before ``intake.conversation`` was read (the
# intake's transaction): a takeover in this process since then is not in that status.
Answer = Callable[[InboundMessage, IntakeResult, bool, bool, float, float], Awaitable[None]]


class ReplyTasks:
    """Runs ``answer`` for each scheduled message, one at a time per conversation.

    Args:
        answer: produces and stores the reply of one message.
        force: set when waiting should stop at once (a second Ctrl-C).
    """

    def __init__(self, answer: Answer, force: asyncio.Event) -> None:
        self._answer = answer
        self._force = force
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks = ConversationLocks()
        # Inbound message ids with a reply task.
        self._in_flight: set[int] = set()
        # Reply tasks per conversation id, running or waiting for their turn.
        self._per_conversation: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self._tasks)

    def answering(self, message_id: int) -> bool:
        """Whether the inbound message ``message_id`` has a reply task here."""
        return message_id in self._in_flight

    def schedule(
        self,
        message: InboundMessage,
        intake: IntakeResult,
        *,
        too_long: bool,
        read_at: float,
        after: asyncio.Event | None = None,
    ) -> None:
        """Queue the reply behind the conversation's earlier ones; with ``after``, it
        also waits for that event once its turn has come. ``read_at``: when the status
        in ``intake.conversation`` was read (see ``Answer``). A message that already has
        a reply task is not scheduled again."""
        message_id, key = intake.message.id, intake.conversation.id
        if message_id in self._in_flight:
            return  # scheduled already
        queued = self._per_conversation[key] > 0 or after is not None
        task = asyncio.create_task(self._run(message, intake, too_long, queued, read_at, after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._in_flight.add(message_id)
        self._per_conversation[key] += 1
        task.add_done_callback(lambda _task: self._done(message_id, key))

    def _done(self, message_id: int, key: int) -> None:
        self._in_flight.discard(message_id)
        self._per_conversation[key] -= 1
        if self._per_conversation[key] <= 0:
            del self._per_conversation[key]

    async def _run(
        self,
        message: InboundMessage,
        intake: IntakeResult,
        too_long: bool,
        queued: bool,
        read_at: float,
        after: asyncio.Event | None,
    ) -> None:
        key = intake.conversation.id
        # Every line of this task names the message (its context is its own: no reset).
        bind_message(message.channel, key, intake.message.seq)
        lock = self._locks.acquire(key)
        try:
            async with lock:
                turn_at = time.monotonic()
                if after is not None:
                    await after.wait()
                await self._answer_when_stored(message, intake, too_long, queued, turn_at, read_at)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("conversation %s: reply failed", key)
        finally:
            self._locks.release(key)

    async def _answer_when_stored(
        self,
        message: InboundMessage,
        intake: IntakeResult,
        too_long: bool,
        queued: bool,
        turn_at: float,
        read_at: float,
    ) -> None:
        """``answer``, again while the database is unavailable when it fails.

        The message is stored and claimed by this process, so no other process and no
        recovery pass here would answer it: given up, it would wait for a restart. It is
        answered from the start once the database is back (under the conversation's
        lock, so later messages of the conversation wait their turn), with the
        conversation read again (``queued``: that read is also what notices the
        database is back). Cancelled at shutdown, it is answered by the next process.
        """
        key, delays = intake.conversation.id, doubling(*DATABASE_RETRY_S)
        # The tries are one call to the store: a statement its statement_timeout cancels
        # every time is given up after a few of them (see STATEMENT_CANCELS), as a plain
        # failure, instead of being tried until shutdown.
        with one_call():
            while True:
                try:
                    await self._answer(message, intake, too_long, queued, turn_at, read_at)
                    return
                except DatabaseUnavailableError as exc:
                    if exc.maybe_committed:
                        raise  # its reply may be stored: answering again could answer twice
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # Shutdown cancelled it and something on the way swallowed that
                        # for the store's error: waiting on would hold the shutdown.
                        raise asyncio.CancelledError from exc
                    # (Logged where it is: once per outage, by the store.)
                    _log.debug("conversation %s: waits for the database: %s", key, exc)
                await asyncio.sleep(next(delays))
                queued = True

    async def drain(self, within: float | None = None) -> bool:
        """Wait for running replies; True when all finished within ``within`` seconds.

        Returns early (False) when ``force`` is set meanwhile.
        """
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        forced = asyncio.create_task(self._force.wait())
        try:
            while self._tasks and not self._force.is_set():
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                await asyncio.wait(
                    {*self._tasks, forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            forced.cancel()
        return not self._tasks

    async def finish(self, grace: float) -> None:
        """Let running replies finish within ``grace`` seconds, then cancel the rest
        (what they produced is stored as failed; their messages stay unanswered and are
        answered by the next process to look, once this one's claim is gone)."""
        if not self._tasks:
            return
        _log.info("waiting up to %.1fs for %d replies", grace, len(self._tasks))
        if not await self.drain(grace):
            _log.warning("cancelling %d replies still running", len(self._tasks))
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
