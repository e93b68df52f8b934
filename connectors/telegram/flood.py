"""Pacing sends to Telegram's flood limits.

Three limits apply at once (see ``FloodLimits``): a least interval between messages in
one chat, a sliding-window count per group, and a sliding-window count per second over
all chats. A ``RetryAfter`` answer pauses every send until it expires, as Telegram asks
(python-telegram-bot's own rate limiter does the same).

Sends within a chat are serialized in arrival order by ``chat_turn``: the parts of a long
answer and the edits of a streamed one arrive in the order they were made.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from connectors.telegram.config import FloodLimits

__all__ = ["FloodControl", "is_group"]

_PRUNE_ABOVE = 1024  # chats remembered before idle ones are forgotten
_GLOBAL_WINDOW_S = 1.0


def is_group(chat_id: int) -> bool:
    """Groups, supergroups and channels have negative ids; private chats positive ones."""
    return chat_id < 0


@dataclass
class _Chat:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    last: float = float("-inf")
    window: deque[float] = field(default_factory=deque)


class FloodControl:
    """Decides when the next message may go out; see the module docstring."""

    def __init__(self, limits: FloodLimits) -> None:
        self.limits = limits
        self._chats: dict[int, _Chat] = {}
        self._sent: deque[float] = deque(maxlen=limits.global_per_second)
        self._global = asyncio.Lock()
        self._paused_until = float("-inf")

    @staticmethod
    def now() -> float:
        return time.monotonic()

    @property
    def paused(self) -> bool:
        """Whether Telegram asked for a pause (``RetryAfter``) that is not over yet."""
        return self._paused_until > self.now()

    def pause(self, seconds: float) -> None:
        """Hold every send for ``seconds`` (a ``RetryAfter`` answer)."""
        self._paused_until = max(self._paused_until, self.now() + max(0.0, seconds))

    @asynccontextmanager
    async def chat_turn(self, chat_id: int) -> AsyncIterator[None]:
        """Exclusive, first-come-first-served use of one chat's send slot."""
        chat = self._chats.get(chat_id)
        if chat is None:
            self._prune()
            chat = self._chats[chat_id] = _Chat()
        chat.users += 1
        try:
            async with chat.lock:
                yield
        finally:
            chat.users -= 1

    @asynccontextmanager
    async def message_slot(self, chat_id: int) -> AsyncIterator[None]:
        """Wait until a message may be sent to ``chat_id``; send it inside the block.

        Use inside ``chat_turn(chat_id)``. The message counts for its chat from when the
        block ends (the API call returned), so the spacing holds where Telegram measures
        it, whatever the network delay of each call; the overall limit counts from the
        start.
        """
        chat = self._chats[chat_id]
        group = is_group(chat_id)
        while True:
            now = self.now()
            ready = max(now, chat.last + self.limits.per_chat_interval_s, self._paused_until)
            if group and len(chat.window) >= self.limits.group_max_messages:
                ready = max(ready, chat.window[0] + self.limits.group_window_s)
            if ready <= now:
                break
            await asyncio.sleep(ready - now)  # then re-check: a pause may have grown
        await self.wait_global()
        try:
            yield
        finally:
            chat.last = self.now()
            if group:
                chat.window.append(chat.last)
                while len(chat.window) > self.limits.group_max_messages:
                    chat.window.popleft()

    @asynccontextmanager
    async def call_slot(self) -> AsyncIterator[None]:
        """For calls that are not messages (chat actions, callback answers): they only
        wait out a ``RetryAfter`` pause."""
        await self.wait_pause()
        yield

    async def wait_pause(self) -> None:
        """Wait out a ``RetryAfter`` pause only (calls that are not messages)."""
        # A loop, not one sleep: another RetryAfter may move the end of the pause.
        while (wait := self._paused_until - self.now()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def wait_global(self) -> None:
        """Wait for a slot under the overall per-second limit (and any pause); take it."""
        async with self._global:  # FIFO: waiters go out in the order they came
            while True:
                now = self.now()
                ready = max(now, self._paused_until)
                if len(self._sent) == self._sent.maxlen:
                    ready = max(ready, self._sent[0] + _GLOBAL_WINDOW_S)
                if ready <= now:
                    break
                await asyncio.sleep(ready - now)
            self._sent.append(self.now())

    def _prune(self) -> None:
        if len(self._chats) < _PRUNE_ABOVE:
            return
        horizon = self.now() - max(self.limits.per_chat_interval_s, self.limits.group_window_s)
        for chat_id, chat in list(self._chats.items()):
            if chat.users == 0 and chat.last < horizon:
                del self._chats[chat_id]
