"""``botkit data``: customers' data on request, from any machine that reaches the bot's
database: export one person's data, erase it, or purge what has been inactive too long.

Running bots keep serving meanwhile. An erased person who writes again starts afresh,
as a new contact; a conversation being answered while it is erased loses that reply.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from botkit._cli_store import argument_text, current_store
from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore, Deleted, StoreSettings

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


async def export_contact(
    settings: StoreSettings, channel: str, external_id: str, files_dir: Path | None = None
) -> str:
    """Everything stored about one person, as indented JSON; with ``files_dir``, the
    files botkit keeps for them (web uploads) are written there too, each entry of the
    JSON naming its file (``saved_as``).

    Raises:
        StoreError: no such contact, a bad channel or id, the database failed, or a
            file could not be written (the message names it).
    """
    channel, external_id = _person(channel, external_id)
    async with current_store(settings) as store:
        data = await store.export_contact(channel, external_id)
        if data is None:
            raise StoreError(f"no contact {external_id!r} on channel {channel!r}")
        if files_dir is not None:
            await _save_files(store, data, files_dir)
    return json.dumps(data, ensure_ascii=False, indent=2)


# Characters a file name may not hold on common file systems (and path separators).
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


async def _save_files(store: ConversationStore, data: dict[str, Any], files_dir: Path) -> None:
    """Write each listed file as ``<id>-<name>`` under ``files_dir``, never over one."""
    try:
        await asyncio.to_thread(files_dir.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {files_dir}: {exc.strerror}") from None
    for conversation in data["conversations"]:
        for entry in conversation.get("files", []):
            kept = await store.customer_file(entry["id"])
            if kept is None:  # erased since the export read it
                continue
            name = _UNSAFE.sub("_", kept.name).strip(" .") or "file"
            path = files_dir / f"{kept.id}-{name}"
            try:
                await asyncio.to_thread(_write_new, path, kept.data)
            except OSError as exc:
                raise StoreError(f"cannot write {path}: {exc.strerror}") from None
            entry["saved_as"] = path.name


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


def _write_new(path: Path, data: bytes) -> None:
    with path.open("xb") as out:  # "x": an existing file is never overwritten
        out.write(data)
