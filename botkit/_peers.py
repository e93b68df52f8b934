"""Keeping this process in step with the other bot processes sharing its database.

Replicas each hold their own live connections, and a rolling restart runs two versions
side by side. What a peer does reaches this process's connections only through the
database:

* an agent's message sent through a peer's agent API, for a web visitor whose socket is
  held here (Slack and Telegram deliver it whichever process sends it);
* an agent taking over, through a peer, a conversation whose reply this process is
  writing: that reply must stop, as it does when the takeover is made here.

So every ``peer_sync_seconds`` this process counts its peers (a count of the few rows of
``processes`` with a fresh heartbeat: a peer that just started is seen within a look),
and while it has any it looks: one read of the statuses of the conversations it is
replying to, and one of the newest ``seq`` of the conversations its web sockets watch.
A process alone only counts.

A takeover seen here ends the reply as one made here does, a look later: after the words
already shown, or before any if none were (a takeover made in this process also stops a
reply still being prepared, before it reaches the channel). Only replies composed
before the conversation went to a human stop: one composed while an agent already had
it (a plugin's middleware answering whoever has the conversation, say) is not one the
takeover interrupts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta

from botkit._delivery import LiveReplies
from botkit._resume import RecoveryTiming
from botkit.channel import WatchedConversations
from botkit.errors import StoreError
from botkit.store import ConversationStatus, ConversationStore
from botkit.throttled_warning import ThrottledWarning

__all__ = ["PeerSync"]

_log = logging.getLogger("botkit.bot")


class PeerSync:
    """Looks at what peers changed and applies it here (see the module docstring).

    Args:
        store: the open store.
        process_id: this process's id (its own heartbeat row is not a peer).
        live: the replies this process is delivering.
        connectors: the bot's connectors by channel name (read at each look).
        timing: how often to look (``peer_sync_seconds``), and when a peer's heartbeat
            is fresh (``stale_seconds``).
    """

    def __init__(
        self,
        store: ConversationStore,
        process_id: str,
        live: LiveReplies,
        connectors: Mapping[str, object],
        timing: RecoveryTiming,
    ) -> None:
        self._store = store
        self._process_id = process_id
        self._live = live
        self._connectors = connectors
        self._timing = timing
        self._failed = ThrottledWarning(
            _log, "looking at what other bot processes changed failed (retrying): %s"
        )
        self._crashed = ThrottledWarning(
            _log,
            "looking at what other bot processes changed raised (retrying; logged at "
            "most once a minute)",
            level=logging.ERROR,
        )
        self.peers = 0  # other live processes at the last count
        self.looks = 0  # looks made (tests and operators' debugging)

    async def count_peers(self) -> int:
        """Count the other processes with a fresh heartbeat (``peers``), by the
        database's clock (a peer on a host whose clock is behind counts too)."""
        fresh_for = timedelta(seconds=self._timing.stale_seconds)
        self.peers = await self._store.live_peers(self._process_id, fresh_for)
        return self.peers

    async def look(self) -> None:
        """Stop replies whose conversation a peer's agent took over, then hand the web
        connector (and any other ``WatchedConversations``) its conversations' newest
        seqs. Raises StoreError."""
        self.looks += 1
        await self._stop_taken_over()
        for channel, connector in list(self._connectors.items()):
            if isinstance(connector, WatchedConversations):
                keys = connector.watched()
                if keys:
                    connector.advanced(await self._store.last_seqs(channel, keys))

    async def _stop_taken_over(self) -> None:
        # Snapshot before reading: a reply that starts during the read is not judged by
        # a status read before it was composed (the return command's "I'm back" is
        # composed after its status change is committed).
        replying = self._live.deliveries()
        if not replying:
            return
        statuses = await self._store.statuses(replying)
        for conversation_id, deliveries in replying.items():
            if statuses.get(conversation_id) != ConversationStatus.WITH_HUMAN:
                continue
            for delivery in deliveries:
                # Once: a reply stuck in a slow channel call is still live at the next look.
                if (
                    delivery.conversation_status != ConversationStatus.WITH_HUMAN
                    and not delivery.superseded
                ):
                    delivery.supersede()
                    _log.info(
                        "conversation %s: an agent took it over in another process; "
                        "the reply being written here ends",
                        conversation_id,
                    )

    async def run_forever(self) -> None:
        """Count peers and, while there are any, look, each ``peer_sync_seconds``, until
        cancelled. Nothing ends it but the cancellation: a failing database is logged
        (once a minute) and retried at the next tick, and so is anything else that
        raises (a connector's bug), with its traceback."""
        while True:
            await asyncio.sleep(self._timing.peer_sync_seconds)
            try:
                if await self.count_peers():
                    await self.look()
            except StoreError as exc:
                self._failed.warn(exc)
            except Exception as exc:
                self._crashed.warn(exc_info=exc)
