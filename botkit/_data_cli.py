"""``botkit data``: customers' data on request, from any machine that reaches the bot's
database: export one person's data, erase it, or purge what has been inactive too long.

Running bots keep serving meanwhile. An erased person who writes again starts afresh,
as a new contact; a conversation being answered while it is erased loses that reply.
"""

from __future__ import annotations

import json
from datetime import timedelta

from botkit._cli_store import argument_text, current_store
from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import Deleted, StoreSettings

__all__ = ["export_contact", "forget_contact", "purge"]

_NOBODY = "nobody has it"


def _person(channel: str, external_id: str) -> tuple[str, str]:
    """The command's (channel, contact id), refused when not text (see argument_text)."""
    return (
        argument_text("channel", channel, _NOBODY),
        argument_text("contact id", external_id, _NOBODY),
    )


def _summary(deleted: Deleted) -> str:
    return (
        f"deleted {deleted.contacts} contacts, {deleted.conversations} conversations, "
        f"{deleted.messages} messages and {deleted.files} files"
    )


async def export_contact(settings: StoreSettings, channel: str, external_id: str) -> str:
    """Everything stored about one person, as indented JSON.

    Raises:
        StoreError: no such contact, a bad channel or id, or the database failed.
    """
    channel, external_id = _person(channel, external_id)
    async with current_store(settings) as store:
        data = await store.export_contact(channel, external_id)
    if data is None:
        raise StoreError(f"no contact {external_id!r} on channel {channel!r}")
    return json.dumps(data, ensure_ascii=False, indent=2)


async def forget_contact(settings: StoreSettings, channel: str, external_id: str) -> str:
    """Erase one person (see ``ConversationStore.forget_contact``); what went.

    Raises:
        StoreError: no such contact, a bad channel or id, or the database failed.
    """
    channel, external_id = _person(channel, external_id)
    async with current_store(settings) as store:
        deleted = await store.forget_contact(channel, external_id)
    if not deleted.contacts:
        raise StoreError(f"no contact {external_id!r} on channel {channel!r}")
    return f"{channel} {external_id}: {_summary(deleted)}"


async def purge(settings: StoreSettings, days: int) -> str:
    """Delete conversations inactive for ``days`` days (and contacts left with none).

    Raises:
        StoreError: the database failed.
    """
    async with current_store(settings) as store:
        deleted = await store.purge_inactive(utcnow() - timedelta(days=days))
    return f"inactive for {days} days: {_summary(deleted)}"
