"""``botkit data``: customers' data on request, from any machine that reaches the bot's
database: export one person's data, erase it, or purge what has been inactive too long.

Running bots keep serving meanwhile. An erased person who writes again starts afresh,
as a new contact; a conversation being answered while it is erased loses that reply.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore, Deleted, StoreSettings

__all__ = ["export_contact", "forget_contact", "purge"]

T = TypeVar("T")


async def _with_store(
    settings: StoreSettings, work: Callable[[ConversationStore], Awaitable[T]]
) -> T:
    async with ConversationStore(settings) as store:
        await store.ensure_schema(auto_upgrade=False)
        return await work(store)


def _text(what: str, value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes the shell could not decode (surrogateescape)
        raise StoreError(f"the {what} is not valid UTF-8 text; nobody has it") from None
    return value


def _summary(deleted: Deleted) -> str:
    return (
        f"deleted {deleted.contacts} contacts, {deleted.conversations} conversations "
        f"and {deleted.messages} messages"
    )


async def export_contact(settings: StoreSettings, channel: str, external_id: str) -> str:
    """Everything stored about one person, as indented JSON.

    Raises:
        StoreError: no such contact, a bad channel or id, or the database failed.
    """
    channel, external_id = _text("channel", channel), _text("contact id", external_id)
    data = await _with_store(settings, lambda store: store.export_contact(channel, external_id))
    if data is None:
        raise StoreError(f"no contact {external_id!r} on channel {channel!r}")
    return json.dumps(data, ensure_ascii=False, indent=2)


async def forget_contact(settings: StoreSettings, channel: str, external_id: str) -> str:
    """Erase one person (see ``ConversationStore.forget_contact``); what went.

    Raises:
        StoreError: no such contact, a bad channel or id, or the database failed.
    """
    channel, external_id = _text("channel", channel), _text("contact id", external_id)
    deleted = await _with_store(settings, lambda store: store.forget_contact(channel, external_id))
    if not deleted.contacts:
        raise StoreError(f"no contact {external_id!r} on channel {channel!r}")
    return f"{channel} {external_id}: {_summary(deleted)}"


async def purge(settings: StoreSettings, days: int) -> str:
    """Delete conversations inactive for ``days`` days (and contacts left with none).

    Raises:
        StoreError: the database failed.
    """
    before = utcnow() - timedelta(days=days)
    deleted = await _with_store(settings, lambda store: store.purge_inactive(before))
    return f"inactive for {days} days: {_summary(deleted)}"
