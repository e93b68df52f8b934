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
a peer that stops or dies later are answered too.
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
            because then both would answer its messages. It also absorbs clock skew
            between hosts (heartbeats are written with the writer's clock and judged
            with the reader's) up to ``stale_seconds - heartbeat_seconds``.
        pass_seconds: between two recovery passes while running (one indexed read of
            the unanswered backlog). A crashed peer's messages are answered within
            ``stale_seconds + pass_seconds``.
    """

    heartbeat_seconds: float = 10.0
    stale_seconds: float = 30.0
    pass_seconds: float = 15.0


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
        # Loop time from which this process may judge others' heartbeats. After its own
        # heartbeat failed (the database was unreachable, probably for every process),
        # the others need a full stale period of working database to beat again.
        self._judge_from = 0.0

    @property
    def id(self) -> str:
        return self.process.id

    async def register(self) -> None:
        """Add this process's row. Raises StoreError."""
        await self.store.register_process(self.process)

    async def unregister(self) -> None:
        """Delete this process's row (after its replies finished or were cancelled):
        what it left unanswered is recoverable by other processes at once."""
        try:
            await self.store.unregister_process(self.id)
        except StoreError as exc:  # its heartbeat goes stale instead: recovered later
            _log.warning("could not remove process %s from the store: %s", self.id, exc)

    async def heartbeat_forever(self) -> None:
        """Refresh this process's heartbeat until cancelled. A failed write is logged
        and retried on the next tick."""
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            await asyncio.sleep(self.timing.heartbeat_seconds)
            try:
                present = await self.store.heartbeat(self.id)
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
            if not present:
                _log.warning(
                    "process %s is no longer registered in the store (silent for too "
                    "long): other processes may answer its messages too",
                    self.id,
                )

    def may_judge_peers(self) -> bool:
        """False for a while after this process's own heartbeat failed (see ``__init__``)."""
        return asyncio.get_running_loop().time() >= self._judge_from

    async def take_unanswered(
        self, window_seconds: float, channels: Collection[str]
    ) -> list[tuple[InboundMessage, IntakeResult]]:
        """Claim the messages stored within ``window_seconds`` of now that nobody is
        answering, on ``channels`` (those of another channel are left for a process that
        runs it), and rebuild their events."""
        if window_seconds <= 0:
            return []
        now = utcnow()  # the window is measured from this pass, not from the start
        found = await self.store.unanswered(
            since=now - timedelta(seconds=window_seconds),
            stale_before=now - timedelta(seconds=self.timing.stale_seconds),
            exclude_claimer=self.id,
        )
        found = [item for item in found if item.conversation.channel in channels]
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
                received_at=item.received_at or item.message.created_at,
            )
            intake = IntakeResult(
                item.conversation, item.message, duplicate=False, new_conversation=False,
                contact=contact,
            )  # fmt: skip
            events.append((message, intake))
        return events
