"""Publishes system events (conversation started/closed, handoff) to subscribers.

Plugins subscribe through ``PluginRegistry.on_event``. A subscriber that raises is
logged with its owner's name and does not stop the others or the conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from botkit.events import SystemEvent

__all__ = ["EventBus", "Subscriber"]

Subscriber = Callable[[SystemEvent], Awaitable[None]]

_log = logging.getLogger("botkit.events")


class EventBus:
    """Delivers each published event to every subscriber, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []

    def subscribe(self, subscriber: Subscriber, *, owner: str = "core") -> None:
        self._subscribers.append((owner, subscriber))

    async def publish(self, event: SystemEvent) -> None:
        for owner, subscriber in self._subscribers:
            try:
                await subscriber(event)
            except Exception as exc:
                _log.error(
                    "%s: handling %s failed: %s: %s",
                    owner, type(event).__name__, type(exc).__name__, exc, exc_info=exc,
                )  # fmt: skip
