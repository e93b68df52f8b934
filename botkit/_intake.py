"""Intake helpers of the bot: id checks, per-conversation ordering, the stored line."""

from __future__ import annotations

import asyncio
import logging

from botkit.errors import MessageRejectedError, StoreError
from botkit.events import InboundMessage
from botkit.log_context import about_message
from botkit.store._checks import check_key
from botkit.store.records import IntakeResult

__all__ = ["ConversationLocks", "check_keys", "log_stored"]

_log = logging.getLogger("botkit.bot")


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


def log_stored(message: InboundMessage, result: IntakeResult, *, too_long: bool) -> None:
    """One DEBUG line for a message just stored (not a duplicate), naming it.

    DEBUG: at INFO a normally answered message still writes nothing (a busy bot would
    double its log volume); at DEBUG its trail starts here and ends with the reply's
    line (``botkit/_reply_flow.py``).
    """
    if not _log.isEnabledFor(logging.DEBUG):  # the intake's hot path: nothing to do
        return
    # The intake serves many messages in one task: bound for this line only.
    with about_message(message.channel, result.conversation.id, result.message.seq):
        _log.debug(
            "message stored%s%s",
            " (a new conversation)" if result.new_conversation
            else " (reopens the conversation)" if result.reopened else "",
            " (too long)" if too_long else "",
        )  # fmt: skip
