"""``botkit data``: customers' data on request, from any machine that reaches the bot's
database: export one person's data, erase it, or purge what has been inactive too long.

Running bots keep serving meanwhile. An erased person who writes again starts afresh,
as a new contact; a conversation being answered while it is erased loses that reply.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from botkit._cli_store import argument_text, current_store
from botkit._outage_spool import UNREADABLE, SpoolErasure, erase_writer, purge_unreadable
from botkit.errors import StoreError
from botkit.store import ConversationStore, Deleted, StoreSettings

__all__ = ["export_contact", "forget_contact", "purge"]

_NOBODY = "nobody has it"


def _person(channel: str, external_id: str) -> tuple[str, str]:
    """The command's (channel, contact id), refused when not text (see argument_text)."""
    return (
        argument_text("channel", channel, _NOBODY),
        argument_text("contact id", external_id, _NOBODY),
    )


def _no_contact(channel: str, external_id: str) -> StoreError:
    # The web channel's contacts are its conversation keys: "12345" for a signed-in
    # user is "u:12345" there, an easy mistake that would otherwise read as "not found".
    hint = ""
    if channel == "web" and not external_id.startswith(("s:", "u:")):
        hint = (
            " (a web contact is its conversation key, as `botkit handoff list` and "
            "`botkit feedback` show it: s:... for a visitor, u:USER_ID for a signed-in user)"
        )
    return StoreError(f"no contact {external_id!r} on channel {channel!r}{hint}")


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _summary(deleted: Deleted) -> str:
    return (
        f"deleted {_count(deleted.contacts, 'contact')}, "
        f"{_count(deleted.conversations, 'conversation')}, "
        f"{_count(deleted.messages, 'message')} and {_count(deleted.files, 'file')}"
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
            raise _no_contact(channel, external_id)
        if files_dir is not None:
            await _save_files(store, data, files_dir)
    return json.dumps(data, ensure_ascii=False, indent=2)


# Characters a file name may not hold on common file systems (and path separators).
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
# File systems cap a name at 255 bytes; a name of 4-byte characters reaches that at 64.
_NAME_BYTES = 200


def _file_name(file_id: int, name: str) -> str:
    """``<id>-<name>``, safe on common file systems and at most ``_NAME_BYTES`` bytes
    long in UTF-8, its extension (the content's type, see keep_customer_file) kept."""
    safe = _UNSAFE.sub("_", name).strip(" .") or "file"
    suffix = Path(safe).suffix if len(Path(safe).suffix.encode()) <= 16 else ""
    stem = safe[: len(safe) - len(suffix)]
    budget = _NAME_BYTES - len(f"{file_id}-{suffix}".encode())
    stem = stem.encode()[:budget].decode(errors="ignore")  # never half a character
    return f"{file_id}-{stem}{suffix}"


async def _save_files(store: ConversationStore, data: dict[str, Any], files_dir: Path) -> None:
    """Write each listed file as ``<id>-<name>`` under ``files_dir``, never over one,
    readable by its owner only. A failure removes what this run wrote, so the same
    command can simply be run again."""
    try:
        await asyncio.to_thread(files_dir.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {files_dir}: {exc.strerror}") from None
    written: list[Path] = []
    for conversation in data["conversations"]:
        for entry in conversation.get("files", []):
            kept = await store.customer_file(entry["id"])
            if kept is None:  # erased since the export read it
                continue
            path = files_dir / _file_name(kept.id, kept.name)
            try:
                await asyncio.to_thread(_write_new, path, kept.data)
            except OSError as exc:
                for done in written:
                    done.unlink(missing_ok=True)
                raise StoreError(
                    f"cannot write {path}: {exc.strerror}; no file of this export was kept"
                ) from None
            written.append(path)
            entry["saved_as"] = path.name


async def forget_contact(settings: StoreSettings, channel: str, external_id: str) -> str:
    """Erase one person (see ``ConversationStore.forget_contact``), and their messages
    kept in this machine's outage spool (``[store] outage_spool_dir``, waiting or set
    aside: a bot's messages kept during an outage are on its own disk); what went,
    and the spool's files that could not be read (they may hold theirs).

    Raises:
        StoreError: no such contact (in the database or the spool), a bad channel or
            id, or the database failed.
    """
    channel, external_id = _person(channel, external_id)
    # The spool first: a running bot storing a kept message checks its file is still
    # there before each try (botkit/_spooled_intake.py), so one it already read is not
    # stored after the database was erased.
    spool = await _erase_in_spool(settings, channel, external_id)
    async with current_store(settings) as store:
        deleted = await store.forget_contact(channel, external_id)
    lines = _spool_lines(settings, spool)
    missing = _missing_spool(settings)
    if missing:
        lines.append(missing)
    if not deleted.contacts and not spool.removed:
        raise StoreError("\n".join([str(_no_contact(channel, external_id)), *lines]))
    return "\n".join([f"{channel} {external_id}: {_summary(deleted)}", *lines])


async def _erase_in_spool(settings: StoreSettings, channel: str, external_id: str) -> SpoolErasure:
    if not settings.outage_spool_dir:
        return SpoolErasure()
    directory = Path(settings.outage_spool_dir)
    return await asyncio.to_thread(erase_writer, directory, channel, external_id)


def _missing_spool(settings: StoreSettings) -> str | None:
    """A line saying the configured spool folder is not there (None when it is, or
    keeping is off). The bot reads a relative ``outage_spool_dir`` from the folder it
    runs in, and so does this command: run from elsewhere, it finds no spool and would
    otherwise say nothing about the bot's."""
    if not settings.outage_spool_dir:
        return None
    directory = Path(settings.outage_spool_dir)
    if directory.is_dir():
        return None
    line = f"outage spool {directory.absolute()}: no such folder"
    if not directory.is_absolute():
        line += " (relative to where you ran this; run it where the bot runs)"
    return line


def _spool_lines(settings: StoreSettings, spool: SpoolErasure) -> list[str]:
    where = settings.outage_spool_dir
    lines = []
    if spool.removed:
        lines.append(f"outage spool {where}: removed {_count(len(spool.removed), 'kept message')}")
    if spool.error:
        lines.append(f"outage spool: {spool.error}; check it for their messages by hand")
    if spool.unread:
        lines.append(
            f"outage spool {where}: {_count(len(spool.unread), 'file')} could not be read "
            "or removed and may hold their messages; check by hand:"
        )
        lines += [f"  {path}" for path in spool.unread]
    return lines


async def purge(settings: StoreSettings, days: int) -> str:
    """Delete conversations inactive for ``days`` days (and contacts left with none),
    and this machine's outage-spool messages set aside over ``days`` days ago.

    Raises:
        StoreError: the database failed, or the spool could not be read, or a clock
            looks too wrong to purge by (``RetentionClockError``: nothing deleted).
    """
    async with current_store(settings) as store:
        deleted = await store.purge_inactive(await store.retention_cutoff(days))
    summary = f"inactive for {days} days: {_summary(deleted)}"
    if not settings.outage_spool_dir:
        return summary
    missing = _missing_spool(settings)
    if missing:
        return f"{summary}\n{missing}"
    before = time.time() - days * 86_400
    directory = Path(settings.outage_spool_dir)
    try:
        gone = await asyncio.to_thread(purge_unreadable, directory, before)
    except OSError as exc:
        raise StoreError(
            f"{summary}; but cannot purge {directory / UNREADABLE}: {exc.strerror or exc}"
        ) from None
    if gone:
        summary += f"; {_count(gone, 'kept message')} set aside in {directory / UNREADABLE}"
    return summary


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never over an existing file) holding ``data``, mode 0600: these
    are a customer's personal files. A failed write leaves no partial file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError:
        path.unlink(missing_ok=True)
        raise
