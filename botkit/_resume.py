"""Answer what another process left unanswered, and never what one is still answering.

``submit`` stores a message before its reply is produced, so a process killed in
between leaves it ``received``; a redelivery by the channel is a duplicate and would not
be answered. Time cannot tell such a leftover from a message another process is still
answering (a rolling restart's old process, a replica on the same database, a reply
that takes a minute). A claim can: intake stores each message with this process's id,
this process keeps its row in ``processes`` fresh (``Claims.heartbeat_forever``) and
deletes it when it closes. A recovery pass takes a message only when its claimer's row
is gone or stale, re-claiming it atomically (see ``botkit/store/_processes.py``): two
processes recovering at once answer it once.

Passes run at start and then every ``RecoveryTiming.pass_seconds``, so the leftovers of
a peer that stops or dies later are answered too. The start pass takes only what closed
peers left: a peer whose row is there but stale is judged dead only once this process
has been up with a working database for a beat and a half (after an outage every
heartbeat looks stale, live peers' too), and the first periodic pass runs right then.
Unclaimed messages (a version before claims, during the upgrade) are taken only once
older than ``stale_seconds`` plus the shutdown grace.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from botkit._clock_check import ClockCheck
from botkit.errors import StoreError
from botkit.events import Contact, InboundMessage, utcnow
from botkit.store import ConversationStore
from botkit.store.records import IntakeResult, ProcessRecord

__all__ = ["Claims", "RecoveryTiming"]

_log = logging.getLogger("botkit.bot")


@dataclass(frozen=True, slots=True)
class RecoveryTiming:
    """How often this process proves it is alive and looks for others' leftovers.

    Attributes:
        heartbeat_seconds: between two heartbeat writes (one tiny UPDATE each).
        stale_seconds: a process whose heartbeat is older is presumed dead and its
            messages are taken over. Three missed beats: one slow or failed write (a
            database failover, a long GC pause) must not make a live process look dead,
            because then both would answer its messages. Heartbeats are written and
            judged by the database's clock, so hosts' clocks do not move them.
        pass_seconds: between two recovery passes while running (one indexed read of
            the unanswered backlog). A crashed peer's messages are answered within
            ``stale_seconds + pass_seconds``.
        peer_sync_seconds: between two looks at what peers changed, while there are
            peers (see ``botkit._peers``): how late a web visitor whose socket is held
            here sees an agent's message sent through a peer, and how long a reply
            written here runs on after a peer's agent took its conversation over.
    """

    heartbeat_seconds: float = 10.0
    stale_seconds: float = 30.0
    pass_seconds: float = 15.0
    peer_sync_seconds: float = 1.0


class Claims:
    """This process's identity in the store: its row, its heartbeat, its claims.

    Args:
        store: the open store.
        timing: the heartbeat, staleness and pass intervals.
    """

    def __init__(self, store: ConversationStore, timing: RecoveryTiming) -> None:
        self.store = store
        self.timing = timing
        self.process = ProcessRecord(
            id=secrets.token_hex(8), host=socket.gethostname(), pid=os.getpid(),
            started_at=utcnow(),
        )  # fmt: skip
        # Loop time from which this process may judge a peer whose row is still there
        # by its heartbeat (taking over a closed peer's messages needs no judging). At
        # start it is one and a half beats away: after a database outage every row looks
        # stale, and live peers need a beat of working database to refresh theirs. After
        # this process's own heartbeat failed, the others need a full stale period.
        self._judge_from = math.inf
        # The heartbeat's write in flight, if any. It is shielded from cancellation and
        # ``unregister`` waits for it, so that the DELETE is always the last write: a
        # re-registration committing after it would bring the row back and hold this
        # closed process's leftovers for a stale period.
        self._writing: asyncio.Task[bool] | None = None
        self._closed = False
        self._clock = ClockCheck()  # this host's clock against the database's

    @property
    def id(self) -> str:
        return self.process.id

    async def register(self) -> None:
        """Add this process's row. Raises StoreError."""
        await self._register()
        loop = asyncio.get_running_loop()
        self._judge_from = loop.time() + 1.5 * self.timing.heartbeat_seconds

    async def _register(self) -> None:
        before = utcnow()
        written = await self.store.register_process(self.process)
        self._clock.compare(before, written, utcnow())

    async def unregister(self) -> None:
        """Delete this process's row (after its replies finished or were cancelled):
        what it left unanswered is recoverable by other processes at once."""
        self._closed = True
        writing = self._writing
        if writing is not None:  # let a beat in flight land first (see __init__)
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()  # retrieved: a failed last beat no longer matters
        try:
            await self.store.unregister_process(self.id)
        except StoreError as exc:  # its heartbeat goes stale instead: recovered later
            _log.warning("could not remove process %s from the store: %s", self.id, exc)

    async def _beat(self) -> bool:
        """One heartbeat; re-insert the row when it is gone. True when re-registered.

        A live process's row can go: ``register_process`` prunes rows silent for a day
        (a suspended VM, a paused container) and operators may delete rows. Without it,
        its claims protect nothing and peers would answer its messages too. Only a beat
        that finds no row inserts, never a blind upsert: the close path's DELETE must
        stay final (see ``__init__``). Between the row's loss and this beat a peer may
        still take a message: that gap (one heartbeat) is not closed.
        """
        before = utcnow()
        written = await self.store.heartbeat(self.id)
        if written is not None:
            self._clock.compare(before, written, utcnow())
            return False
        if self._closed:
            return False
        await self._register()
        return True

    async def heartbeat_forever(self) -> None:
        """Refresh this process's heartbeat until cancelled. A failed write is logged
        and retried on the next tick; a missing row is inserted again."""
        loop = asyncio.get_running_loop()
        failing = False
        while not self._closed:
            await asyncio.sleep(self.timing.heartbeat_seconds)
            if self._closed:
                return
            self._writing = asyncio.create_task(self._beat(), name="process-beat")
            try:
                reregistered = await asyncio.shield(self._writing)
            except StoreError as exc:
                if not failing:
                    _log.warning("process heartbeat failed (retrying): %s", exc)
                failing = True
                self._judge_from = math.inf
                continue
            if failing:
                _log.info("process heartbeat works again")
                failing = False
                self._judge_from = loop.time() + self.timing.stale_seconds
            if reregistered:
                _log.warning(
                    "process %s was no longer registered in the store (its row was "
                    "deleted or pruned); registered it again so that other processes "
                    "leave its messages alone",
                    self.id,
                )

    def may_judge_peers(self) -> bool:
        """Whether a peer's stale heartbeat means it died (see ``__init__``); False
        before ``register``, for a beat and a half after it, and for a while after this
        process's own heartbeat failed."""
        return asyncio.get_running_loop().time() >= self._judge_from

    def seconds_until_judging(self) -> float:
        """Seconds until ``may_judge_peers`` becomes true (0 when it is; inf while this
        process's heartbeat fails or before ``register``)."""
        return max(0.0, self._judge_from - asyncio.get_running_loop().time())

    async def take_unanswered(
        self, window_seconds: float, channels: Collection[str], *, grace_seconds: float
    ) -> list[tuple[InboundMessage, IntakeResult]]:
        """Claim the messages stored within ``window_seconds`` of now that nobody is
        answering, on ``channels`` (those of another channel are left for a process that
        runs it), and rebuild their events.

        Messages of a process that closed are taken at once. Those of a process whose
        heartbeat is stale, and unclaimed ones, only while ``may_judge_peers``.
        Unclaimed messages (stored by a version before claims, still running during
        the rolling upgrade, or by a store user that does not claim) carry no heartbeat
        to tell whether their writer still answers them: they are taken only once
        older than ``stale_seconds + grace_seconds`` (the writer's shutdown grace), when
        the writer has finished with them or is gone.
        """
        if window_seconds <= 0:
            return []
        judging = self.may_judge_peers()
        # Heartbeats are judged by the database's clock, as they were written (see
        # botkit/store/_processes.py); the messages' times by this host's, as their
        # writers' hosts stored them.
        database_now = await self.store.database_now()
        now = utcnow()  # the window is measured from this pass, not from the start
        settle = timedelta(seconds=self.timing.stale_seconds + grace_seconds)
        found = await self.store.unanswered(
            since=now - timedelta(seconds=window_seconds),
            stale_before=database_now - timedelta(seconds=self.timing.stale_seconds),
            unclaimed_before=now - settle,
            exclude_claimer=self.id,
        )
        found = [
            item
            for item in found
            if item.conversation.channel in channels
            and (judging or (item.claimed_by is not None and not item.claimer_registered))
        ]
        taken = await self.store.reclaim([(i.message.id, i.claimed_by) for i in found], self.id)
        events = []
        for item in found:
            if item.message.id not in taken:
                continue  # another process claimed it first: it answers it
            contact = item.contact
            message = InboundMessage(
                channel=item.conversation.channel,
                conversation_key=item.conversation.key,
                contact=Contact(contact.channel, contact.external_id, contact.display_name),
                text=item.message.text,
                idempotency_key=item.message.idempotency_key or f"resume:{item.message.id}",
                channel_ids=item.channel_ids,
                attachments=item.message.attachments,
                received_at=item.received_at or item.message.created_at,
            )
            intake = IntakeResult(
                item.conversation, item.message, duplicate=False, new_conversation=False,
                contact=contact,
            )  # fmt: skip
            events.append((message, intake))
        return events
