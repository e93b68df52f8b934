"""This process among the others on one database, for the bot's lifetime.

It owns what runs beside the replies from the bot's start to its close: the heartbeat
that keeps this process's claims alive (``botkit._resume.Claims``), the look at what
peers changed (``botkit._peers.PeerSync``), and the recovery passes that answer what a
stopped or crashed process left unanswered, at ``run()``'s start and then periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Collection, Mapping

from botkit._delivery import LiveReplies
from botkit._peers import PeerSync
from botkit._replies import ReplyTasks
from botkit._resume import Claims, RecoveryTiming
from botkit.errors import DatabaseUnavailableError
from botkit.events import InboundMessage
from botkit.store._database import one_call
from botkit.store.records import IntakeResult

__all__ = ["Recovery"]

_log = logging.getLogger("botkit.bot")


class Recovery:
    """The heartbeat, the peer sync and the recovery passes of one started bot.

    Args:
        claims: this process's registered claims (from ``open_store_waiting``).
        live: the replies this process is delivering (takeovers by peers end them).
        connectors: the bot's connectors by channel name, read at each pass: only
            messages of channels this process runs are taken.
        replies: the bot's reply tasks: a message taken over is queued there.
        window_seconds: how far back a pass looks (``bot.resume_unanswered_seconds``).
        grace_seconds: a writer's shutdown grace (``bot.shutdown_grace_seconds``), see
            ``Claims.take_unanswered``.
    """

    def __init__(
        self,
        claims: Claims,
        live: LiveReplies,
        connectors: Mapping[str, object],
        replies: ReplyTasks,
        *,
        window_seconds: float,
        grace_seconds: float,
    ) -> None:
        self.claims = claims
        self._live = live
        self._connectors = connectors
        self._replies = replies
        self._window_seconds = window_seconds
        self._grace_seconds = grace_seconds
        self._cancels: Counter[object] = Counter()  # the passes' (see resume_unanswered)
        self.peers = PeerSync(claims.store, claims.id, live, connectors, claims.timing)
        # Started at once, not in run(): a bot fed through submit() alone claims
        # messages too, and must keep them alive while it answers.
        self._tasks = (
            asyncio.create_task(claims.heartbeat_forever(), name="process-heartbeat"),
            asyncio.create_task(self.peers.run_forever(), name="peer-sync"),
        )

    @property
    def timing(self) -> RecoveryTiming:
        return self.claims.timing

    async def resume_unanswered(self) -> None:
        """Answer the recent messages no live process is answering: a crash's leftovers,
        and what a process that closed had to cut off."""
        # Messages this process stored (also while connect() ran) carry its own claim
        # from the INSERT on, so they are never found here: no race with submit().
        read_at = self._live.now()  # before their conversations' status is read
        channels: Collection[str] = set(self._connectors)
        # The passes are one call to the store: a look that the statement_timeout
        # cancels pass after pass is a plain failure after a few (STATEMENT_CANCELS),
        # not an outage reported every pass. Only around the look: the replies it
        # queues start tasks that would share the count.
        with one_call(self._cancels):
            found = await self.claims.take_unanswered(
                self._window_seconds, channels, grace_seconds=self._grace_seconds
            )
        for message, intake in found:
            self._replies.schedule(message, intake, too_long=False, read_at=read_at)
        if found:
            _log.info("answering %d messages left unanswered by a stopped process", len(found))

    async def answer_orphan(
        self, message: InboundMessage, result: IntakeResult, *, too_long: bool, read_at: float
    ) -> None:
        """Answer a redelivered message that this process stored but has no reply task
        for: its first ``submit`` failed at the intake's COMMIT, after the server had
        committed it (the channel was told to retry). Without this the message would
        wait for a restart: recovery never takes what a live process claimed.

        A reply task here, or one that finished since the intake's read (the message is
        no longer ``received`` then), or a peer's claim makes the compare-and-set take
        nothing: the message is answered once.
        """
        message_id, claims = result.message.id, self.claims
        if self._replies.answering(message_id):
            return
        if message_id not in await claims.store.reclaim([(message_id, claims.id)], claims.id):
            return
        _log.info(
            "answering redelivered message %s: its first delivery was stored without a reply",
            message.idempotency_key,
        )
        self._replies.schedule(message, result, too_long=too_long, read_at=read_at)

    async def resume_unanswered_or_wait(self) -> None:
        """One look for unanswered messages that never ends the bot: a database that
        goes away (even at the moment ``run()`` starts) only delays it to the next pass."""
        try:
            await self.resume_unanswered()
        except DatabaseUnavailableError as exc:
            # The store has said so (once per outage); the next pass looks again.
            _log.debug("looking for unanswered messages waits for the database: %s", exc)
        except Exception as exc:
            _log.error("looking for unanswered messages failed: %s", exc, exc_info=exc)

    async def resume_periodically(self) -> None:
        """Look again every ``pass_seconds``: a peer that closes or dies after our start
        leaves messages that only a running process can answer. The first one also
        runs as soon as this process may judge stale peers (see ``Claims``), so a
        crash's leftovers wait a beat and a half at a restart, not a whole pass."""
        while True:
            delay = self.timing.pass_seconds
            if not self.claims.may_judge_peers():
                delay = min(delay, self.claims.seconds_until_judging())
            await asyncio.sleep(delay)
            await self.resume_unanswered_or_wait()

    async def close(self) -> None:
        """Stop looking at peers and the heartbeat, then delete this process's row (its
        replies are done or cancelled by now), so that others recover what it left at
        once."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.claims.unregister()
