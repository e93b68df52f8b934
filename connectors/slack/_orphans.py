"""Taking down a "thinking" placeholder whose own ``chat.postMessage`` timed out.

A post that timed out may have been made by Slack (only its answer was lost, or it came
late), so its ``ts`` is unknown, and it is never posted again (Slack has no idempotency
key; see ``_api.py``). The reply goes out as new messages all the same; the placeholder,
if it landed, would read "Thinking…" forever. So every placeholder is posted with a
random marker in its message metadata, and after a timeout the marker is looked for
among the bot's recent messages (``conversations.replies`` in a thread, else
``conversations.history``) a few times, since a slow Slack may make the post after the
timeout, and the message found is deleted. Only reads and deletes: nothing is posted, so
nothing can show twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botkit.errors import ConnectorError
from connectors.slack._api import SlackApi

__all__ = ["LostPost", "Sweeper", "post_marker"]

log = logging.getLogger("connectors.slack")

# The metadata ``event_type`` of a placeholder (Slack: lower-case, letters, digits and _).
MARK_EVENT = "botkit_placeholder"
# Slack's ts are Slack's clock; the window starts this long before ours said the post
# went out, for clock skew (NTP keeps it to milliseconds; a minute is far past that).
_SKEW_S = 60.0
# A look reads at most this many messages newer than the window's start: a thread or a
# DM does not get that many in a minute or two.
_PAGE = 100
# When to look, in request_timeout_s after the timeout: at once (the common lost
# answer: the post was made), then later for a post Slack was still making.
_LOOKS = (0.0, 1.0, 2.0, 4.0)


def post_marker() -> tuple[str, dict[str, Any]]:
    """A new marker and the ``metadata`` argument of ``chat.postMessage`` carrying it."""
    mark = secrets.token_hex(8)
    return mark, {"event_type": MARK_EVENT, "event_payload": {"id": mark}}


@dataclass(frozen=True, slots=True)
class LostPost:
    """A post that timed out: where it went, its marker, and when (wall clock) it was
    sent, as ``time.time()`` read just before."""

    channel: str
    thread_ts: str | None
    mark: str
    sent_at: float = field(default_factory=time.time)


class Sweeper:
    """Looks for lost placeholders in the background and deletes those it finds.

    Args:
        api: the Web API (lookups and deletes are single unpaced calls, ``call_once``).
        timeout_s: ``request_timeout_s``: the looks are spread over 4 of it.

    Attributes:
        closed: set by ``close`` (disconnect): no new looks start; cleared on connect.
    """

    def __init__(self, api: SlackApi, timeout_s: float) -> None:
        self._api = api
        self._waits: Sequence[float] = [
            (b - a) * timeout_s for a, b in itertools.pairwise((0.0, *_LOOKS))
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def sweep(self, lost: LostPost) -> None:
        """Start looking for ``lost`` (returns at once; ``close`` stops the looks)."""
        if self.closed:
            log.info(
                "slack: a placeholder may be up in %s; not looked for (shut down)", lost.channel
            )
            return
        task = asyncio.create_task(self._sweep(lost), name="slack-lost-placeholder")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop the looks still going (at shutdown: a placeholder not found yet stays)."""
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _sweep(self, lost: LostPost) -> None:
        for wait in self._waits:
            await asyncio.sleep(wait)
            try:
                ts = await self._find(lost)
                if ts is None:
                    continue
                await self._api.call_once("chat.delete", channel=lost.channel, ts=ts)
            except ConnectorError as exc:
                # A 429 or an outage: the next look tries again (a delete is idempotent).
                log.info("slack: looking for a lost placeholder in %s: %s", lost.channel, exc)
                continue
            log.info(
                "slack: the placeholder whose post timed out landed in %s (ts %s); deleted",
                lost.channel,
                ts,
            )
            return
        log.warning(
            "slack: the placeholder whose post timed out in %s (thread %s) was not found"
            " after %d looks: it did not land, or it stays up (metadata id %s)",
            lost.channel,
            lost.thread_ts or "none",
            len(self._waits),
            lost.mark,
        )

    async def _find(self, lost: LostPost) -> str | None:
        """The ``ts`` of the bot's message carrying ``lost.mark``, or None."""
        args: dict[str, str] = {
            "channel": lost.channel,
            "oldest": f"{lost.sent_at - _SKEW_S:.6f}",
            "limit": str(_PAGE),
            "include_all_metadata": "true",
        }
        method = "conversations.history"
        if lost.thread_ts:
            method, args["ts"] = "conversations.replies", lost.thread_ts
        data = await self._api.call_once(method, get=True, **args)
        messages = data.get("messages")
        for msg in messages if isinstance(messages, list) else ():
            if isinstance(msg, dict) and _mark_of(msg) == lost.mark:
                ts = msg.get("ts")
                if isinstance(ts, str) and ts:
                    return ts
        return None


def _mark_of(msg: dict[str, Any]) -> str | None:
    """The placeholder marker in a listed message's metadata, or None."""
    meta = msg.get("metadata")
    if not isinstance(meta, dict) or meta.get("event_type") != MARK_EVENT:
        return None
    payload = meta.get("event_payload")
    mark = payload.get("id") if isinstance(payload, dict) else None
    return mark if isinstance(mark, str) else None
