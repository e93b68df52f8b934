"""Intake helpers of the bot: id checks and per-conversation ordering."""

from __future__ import annotations

import asyncio

from botkit.errors import MessageRejectedError, StoreError
from botkit.events import InboundMessage
from botkit.store._checks import check_key

__all__ = ["ConversationLocks", "check_keys"]


def check_keys(message: InboundMessage, user_reply: str) -> None:
    """Refuse ids no database can hold (empty, over-long, NUL): a permanent problem of
    this message, unlike a database outage, so it is reported as a rejection."""
    try:
        check_key(message.channel, "channel", channel=True)
        check_key(message.conversation_key, "conversation key")
        check_key(message.contact.external_id, "contact id")
        check_key(message.idempotency_key, "idempotency key")
    except StoreError as exc:
        raise MessageRejectedError(str(exc), user_reply) from exc


class ConversationLocks:
    """FIFO locks per conversation, dropped when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    def acquire(self, key: int) -> asyncio.Lock:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        return lock

    def release(self, key: int) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)
