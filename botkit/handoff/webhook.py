"""Telling the agents' tool about hand-offs: a JSON POST per ``HandoffRequested``, per
``HandoffReleased`` (the conversation went back to the bot: the customer sent the
return command, or an agent gave it back through the agent API), and per
``ConversationMoved`` (its chat got a new id, so the tool's links to the old key would
stop working).

Each event is posted once (no retry) and unsigned: the tool should treat it as a hint to
look, and poll ``GET /v1/handoffs`` as the source of truth (docs/agents.md).

Calls run in the background so a slow tool never delays the customer's confirmation;
each is bounded by the configured timeout. Failures are logged (with the URL's host
only, as the rest may hold a token) and never raised.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from botkit.events import ConversationMoved, HandoffRequested, SystemEvent

__all__ = ["HandoffReleased", "WebhookNotifier", "event_payload"]


@dataclass(frozen=True, slots=True)
class HandoffReleased(SystemEvent):
    """A conversation a human had (or waited for) is the bot's again: ``by`` is
    ``"customer"`` (the return command) or ``"agent"`` (the agent API's ``release``);
    ``agent`` who gave it back, when an agent's own token did (None: the shared token,
    or the customer)."""

    by: str = "customer"
    agent: str | None = None


# The events the tool is told about.
Announced = HandoffRequested | HandoffReleased | ConversationMoved


def event_payload(event: Announced) -> dict[str, Any]:
    """The JSON body posted for ``event``."""
    if isinstance(event, ConversationMoved):
        return {
            "type": "conversation_moved",
            "channel": event.channel,
            "conversation_key": event.conversation_key,
            "old_key": event.old_key,
            "at": event.at.isoformat(),
        }
    if isinstance(event, HandoffReleased):
        return {
            "type": "handoff_released",
            "channel": event.channel,
            "conversation_key": event.conversation_key,
            "by": event.by,
            "agent": event.agent,
            "at": event.at.isoformat(),
        }
    return {
        "type": "handoff_requested",
        "channel": event.channel,
        "conversation_key": event.conversation_key,
        "reason": event.reason,
        "at": event.at.isoformat(),
    }


class WebhookNotifier:
    """Posts hand-off events to ``url``; an event-bus subscriber.

    Args:
        url: the webhook address (http or https).
        timeout: seconds one call may take in total.
        logger: where failures are reported.
    """

    def __init__(self, url: str, *, timeout: float, logger: logging.Logger) -> None:
        self._url = url
        self._where = urlsplit(url).netloc.rpartition("@")[2]  # no credentials in logs
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._log = logger
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def __call__(self, event: SystemEvent) -> None:
        if not isinstance(event, Announced):
            return
        task = asyncio.create_task(self._post(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, event: Announced) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": "botkit-handoff"}
            )
        try:
            async with self._session.post(self._url, json=event_payload(event)) as response:
                if response.status >= 300:
                    self._log.error(
                        "hand-off webhook at %s answered HTTP %d for %s:%s",
                        self._where, response.status, event.channel, event.conversation_key,
                    )  # fmt: skip
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._log.error(
                "hand-off webhook at %s failed for %s:%s: %s: %s",
                self._where, event.channel, event.conversation_key, type(exc).__name__, exc,
            )  # fmt: skip

    async def close(self) -> None:
        """Let calls in flight finish (each bounded by the timeout), then close."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
