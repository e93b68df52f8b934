"""Customer messages (and agents' replies on the channel) kept on local disk while the
database is unavailable.

Some channels cannot hold a message for us: Slack delivers an event four times within
about five minutes and then drops it, and disables an app's event subscriptions when it
acknowledges under 5% of an hour's events; Telegram gives a webhook's update up after
some failed tries. During a longer database outage their
messages are kept here instead, acknowledged, and stored (then answered) once the
database answers again (see ``Bot.submit_or_keep``).

One JSON file per message, written to a temporary name, flushed to disk and renamed, so
a crash leaves whole files or none; the names sort in arrival order. Storing a kept
message is idempotent (its channel delivery key), so one stored twice (a crash between
the store and the file's removal, two processes sharing the directory) is answered once.
The files hold what customers wrote: the directory is made private to the bot's user,
and each file is removed as soon as its message is stored. A file that cannot be read
back is moved to ``unreadable/`` with a log line, never dropped silently; the bot's
retention pass deletes those older than ``[store] retention_days``, and ``botkit data
forget`` a person's, waiting or set aside (``purge_unreadable``, ``erase_writer``).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botkit.events import Attachment, Contact, InboundMessage

__all__ = [
    "OutageSpool",
    "SpoolErasure",
    "SpoolFull",
    "SpooledMessage",
    "erase_writer",
    "purge_unreadable",
]

_log = logging.getLogger("botkit.bot")

# 1: a customer's message; 2: may also be a human agent's (``agent_name``), which an
# older botkit must not take for a customer's: it sets a file of a newer format aside.
_FORMAT = 1
_FORMAT_AGENT = 2
_SUFFIX = ".json"
# A name's time prefix: nanoseconds, zero-padded so that names sort as the numbers do.
_PREFIX_DIGITS = 20
UNREADABLE = "unreadable"


class SpoolFull(Exception):
    """The directory holds ``max_messages`` already, or a file could not be written."""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """A message waiting for the database, and the condition it is stored under."""

    message: InboundMessage
    # Store it only if its conversation exists by then (a Slack thread reply is the
    # bot's business only in a thread it is part of; see ``Bot.submit_or_keep``).
    existing_conversation_only: bool = False
    # Set: a human agent's reply on the channel (see ``Bot.submit_or_keep``), stored as
    # this agent's when it is one there.
    agent_name: str | None = None


class OutageSpool:
    """The directory of kept messages, oldest first.

    Args:
        directory: where the files go; made (private) when the first message is kept.
        max_messages: kept at most; beyond, ``keep`` raises ``SpoolFull``.
    """

    def __init__(self, directory: Path, *, max_messages: int) -> None:
        self.directory = directory
        self.max_messages = max_messages
        self._queue: list[Path] = []  # sorted by name: arrival order
        self._names = itertools.count()
        # The newest name's time prefix: each new name's is past it (see ``keep``).
        self._last_ns = 0
        self.added = asyncio.Event()  # set by each keep, cleared by the reader
        self.emptied = asyncio.Event()  # set while nothing is kept (for ``Bot.drain``)
        self.emptied.set()

    def __len__(self) -> int:
        return len(self._queue)

    async def load(self) -> int:
        """Queue the files a previous run left (a crash or a stop during an outage);
        returns how many."""
        found, newest = await asyncio.to_thread(self._leftovers)
        self._last_ns = max(self._last_ns, newest)
        self._queue = sorted({*self._queue, *found})
        self._note_size()
        if found:
            self.added.set()
        return len(found)

    async def writable(self) -> bool:
        """Whether files can be made there (the directory, or the nearest existing
        folder above it, is writable): checked at start, not only in an outage."""
        return await asyncio.to_thread(self._writable)

    def _writable(self) -> bool:
        folder = self.directory.absolute()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)

    def _leftovers(self) -> tuple[list[Path], int]:
        """The files waiting, and the newest time prefix of any name there, set aside
        ones included: names then never repeat in the folder, so a file set aside never
        replaces an older one of the same name (a container's process id is the same
        on every start, and the counter starts again at 0)."""
        if not self.directory.is_dir():
            return [], 0
        for partial in self.directory.glob("*.tmp"):  # a write that a crash cut short
            partial.unlink(missing_ok=True)
        found = sorted(self.directory.glob(f"*{_SUFFIX}"))
        aside = self.directory / UNREADABLE
        names = [p.name for p in found]
        try:
            names += [p.name for p in aside.iterdir()] if aside.is_dir() else []
        except OSError:  # it only keeps names apart: not a reason to refuse to start
            pass
        return found, max(map(_time_prefix, names), default=0)

    async def keep(self, kept: SpooledMessage) -> None:
        """Write ``kept`` to disk (durably) behind the others.

        Raises:
            SpoolFull: ``max_messages`` are kept already, or the disk refused it.
        """
        if len(self._queue) >= self.max_messages:
            raise SpoolFull(f"{self.max_messages} messages are kept already")
        # Named before the write: two keeps at once stay in the order they came. The
        # time prefix only grows, from the newest name a previous run left (``load``):
        # a clock stepped back (NTP) must not put a later message before an earlier one.
        # Processes sharing the folder each seed from the others' files at their start;
        # between them, order is as good as their clocks (give each its own folder).
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        name = f"{self._last_ns:0{_PREFIX_DIGITS}d}-{os.getpid()}-{next(self._names):09d}"
        try:
            path = await asyncio.to_thread(self._write, name, _encode(kept))
        except OSError as exc:
            raise SpoolFull(f"cannot write to {self.directory}: {exc}") from exc
        bisect.insort(self._queue, path)  # a slower write may finish after a later one
        self._note_size()
        self.added.set()

    def _write(self, name: str, data: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.directory / f"{name}.tmp"
        final = self.directory / f"{name}{_SUFFIX}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as file:  # closes fd
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, final)
        _fsync_directory(self.directory)
        return final

    async def oldest(self) -> tuple[Path, SpooledMessage] | None:
        """The oldest readable kept message (unreadable files are moved aside on the
        way), or None when none is kept."""
        while self._queue:
            path = self._queue[0]
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:  # another process sharing the directory stored it
                del self._queue[0]
                self._note_size()
                continue
            except OSError as exc:
                await self.set_aside(path, f"cannot be read: {exc}")
                continue
            try:
                return path, _decode(data)
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                await self.set_aside(path, f"is not a kept message: {exc}")
        return None

    async def forget(self, path: Path) -> None:
        """Remove a kept message that is stored (or must not be: see the caller)."""
        await asyncio.to_thread(path.unlink, missing_ok=True)
        self._drop(path)

    def _drop(self, path: Path) -> None:
        at = bisect.bisect_left(self._queue, path)
        if at < len(self._queue) and self._queue[at] == path:
            del self._queue[at]
        self._note_size()

    def _note_size(self) -> None:
        if self._queue:
            self.emptied.clear()
        else:
            self.emptied.set()

    async def set_aside(self, path: Path, why: str) -> None:
        """Move a kept message that cannot be stored to ``unreadable/``, with an error
        line saying ``why``: it must not hold up the ones behind it."""
        aside = self.directory / UNREADABLE / path.name
        _log.error("kept message %s %s: moved to %s, not stored", path, why, aside.parent)

        def move() -> None:
            aside.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(path, aside)

        try:
            await asyncio.to_thread(move)
        except OSError as exc:
            _log.error("kept message %s cannot be moved aside either: %s", path, exc)
        self._drop(path)


@dataclass(frozen=True, slots=True)
class SpoolErasure:
    """What ``erase_writer`` did: ``removed`` files held the person's messages;
    ``unread`` could not be read (or removed), so may hold them (for the operator);
    ``error``: the directory itself could not be read."""

    removed: tuple[Path, ...] = ()
    unread: tuple[Path, ...] = ()
    error: str | None = None


def _kept_files(directory: Path) -> list[Path]:
    """The kept messages in ``directory``, waiting or set aside (``unreadable/``)."""
    found = sorted(directory.glob(f"*{_SUFFIX}"))
    aside = directory / UNREADABLE
    if aside.is_dir():
        found += sorted(p for p in aside.iterdir() if p.is_file())
    return found


def _writer(data: bytes) -> tuple[str, str]:
    """The (channel, contact id) a kept message's file names, read as loosely as it
    can be (a file of a newer format or one set aside still names them).

    Raises:
        ValueError, KeyError, TypeError, RecursionError: it names no writer.
    """
    contact = _mapping(_mapping(json.loads(data))["contact"])
    return _text(contact["channel"]), _text(contact["external_id"])


def erase_writer(directory: Path, channel: str, external_id: str) -> SpoolErasure:
    """Remove the kept messages that ``external_id`` on ``channel`` wrote from
    ``directory``, waiting or set aside (``botkit data forget``): the database's
    erasure does not reach them. A running bot that had one queued finds it gone and
    goes on (``oldest``). Blocking: run it in a thread."""
    try:
        if not directory.is_dir():
            return SpoolErasure()
        files = _kept_files(directory)
    except OSError as exc:
        return SpoolErasure(error=f"cannot read {directory}: {exc.strerror or exc}")
    removed: list[Path] = []
    unread: list[Path] = []
    for path in files:
        try:
            writer = _writer(path.read_bytes())
        except FileNotFoundError:  # stored by a running bot meanwhile
            continue
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            unread.append(path)
            continue
        if writer != (channel, external_id):
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError:
            unread.append(path)
            continue
        removed.append(path)
    return SpoolErasure(tuple(removed), tuple(unread))


def purge_unreadable(directory: Path, before: float) -> int:
    """Delete the kept messages set aside (``unreadable/``) whose file was last
    changed before ``before`` (a Unix time; a move keeps the time the message was
    kept): nothing else ever deletes them, and they hold what customers wrote.
    Returns how many went. Blocking: run it in a thread.

    A file that cannot be deleted is logged and skipped.

    Raises:
        OSError: the folder could not be read.
    """
    aside = directory / UNREADABLE
    if not aside.is_dir():
        return 0
    gone = 0
    for path in aside.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                gone += 1
        except FileNotFoundError:
            continue
        except OSError as exc:  # one file (a root-owned copy): the others still go
            _log.error("cannot delete kept message %s: %s", path, exc.strerror or exc)
    return gone


def _time_prefix(name: str) -> int:
    """The time prefix of a kept message's file name; 0 for a name not of ours."""
    head = name.partition("-")[0]
    ok = len(head) == _PREFIX_DIGITS and head.isascii() and head.isdigit()
    return int(head) if ok else 0


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a crash right after it must not lose the file)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(kept: SpooledMessage) -> bytes:
    m = kept.message
    data: dict[str, Any] = {
        "format": _FORMAT if kept.agent_name is None else _FORMAT_AGENT,
        "existing_conversation_only": kept.existing_conversation_only,
        "channel": m.channel,
        "conversation_key": m.conversation_key,
        "contact": {
            "channel": m.contact.channel,
            "external_id": m.contact.external_id,
            "display_name": m.contact.display_name,
            "language_hint": m.contact.language_hint,
        },
        "text": m.text,
        "idempotency_key": m.idempotency_key,
        "channel_ids": m.channel_ids,
        "attachments": [
            {
                "kind": a.kind,
                "name": a.name,
                "mime_type": a.mime_type,
                "size": a.size,
                "url": a.url,
                "ref": a.ref,
            }
            for a in m.attachments
        ],
        "received_at": m.received_at.isoformat(),
    }
    if kept.agent_name is not None:
        data["agent_name"] = kept.agent_name
    # ASCII escapes keep whatever the customer wrote (lone surrogates too) readable back.
    return json.dumps(data, ensure_ascii=True).encode("ascii")


def _decode(data: bytes) -> SpooledMessage:
    """The kept message in ``data``.

    Raises:
        ValueError, KeyError, TypeError, RecursionError: not a kept message of this
            format (RecursionError: nested too deep to parse).
    """
    obj = json.loads(data)
    if not isinstance(obj, dict) or obj.get("format") not in (_FORMAT, _FORMAT_AGENT):
        raise ValueError("unknown format")
    contact = _mapping(obj["contact"])
    message = InboundMessage(
        channel=_text(obj["channel"]),
        conversation_key=_text(obj["conversation_key"]),
        contact=Contact(
            channel=_text(contact["channel"]),
            external_id=_text(contact["external_id"]),
            display_name=_optional_text(contact.get("display_name")),
            language_hint=_optional_text(contact.get("language_hint")),
        ),
        text=_text(obj["text"]),
        idempotency_key=_text(obj["idempotency_key"]),
        channel_ids={_text(k): _text(v) for k, v in _mapping(obj["channel_ids"]).items()},
        attachments=tuple(_attachment(_mapping(a)) for a in _list(obj["attachments"])),
        # A naive time (kept by a botkit before 2026-11-30) is read as UTC, as
        # InboundMessage reads it, not set aside: its channel was acknowledged.
        received_at=datetime.fromisoformat(_text(obj["received_at"])),
    )
    flag = obj["existing_conversation_only"]
    if not isinstance(flag, bool):
        raise TypeError("existing_conversation_only is not a boolean")
    agent_name = _text(obj["agent_name"]) if obj["format"] == _FORMAT_AGENT else None
    return SpooledMessage(message, existing_conversation_only=flag, agent_name=agent_name)


def _attachment(a: dict[str, Any]) -> Attachment:
    size = a.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise TypeError("attachment size is not an integer")
    return Attachment(
        kind=_text(a["kind"]),
        name=_optional_text(a.get("name")),
        mime_type=_optional_text(a.get("mime_type")),
        size=size,
        url=_optional_text(a.get("url")),
        ref=_optional_text(a.get("ref")),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value
