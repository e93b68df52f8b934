"""The files customers send, fetched for the human agents who answer them.

A customer's photo or document stays on their platform; the stored message keeps its
details and the platform's handle for it (``Attachment.ref``). When an agent opens it
(the agent API), the conversation's connector fetches it, if it can
(``botkit.channel.FileSource``: Telegram; Slack's files are opened in Slack itself,
through their link).

Where no platform keeps the file (the web widget), botkit keeps it in its own store
(``CoreHandle.keep_file``) and the ref says so: ``kept:<id>``. Such a file is read from
the store, and only for the conversation it was sent in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Protocol

from botkit.channel import FileSource
from botkit.errors import ConnectorError, StoreError
from botkit.events import Attachment

__all__ = [
    "MAX_FILE_BYTES",
    "CustomerFiles",
    "FileUnavailableError",
    "KeptFiles",
    "kept_ref",
]

# What Telegram's Bot API serves at most; also a bound on what one request holds.
MAX_FILE_BYTES = 20 * 1024 * 1024

_KEPT = re.compile(r"^kept:([1-9][0-9]{0,18})$")

_log = logging.getLogger("botkit.agents")


def kept_ref(file_id: int) -> str:
    """The ``Attachment.ref`` of a file kept in botkit's store."""
    return f"kept:{file_id}"


def _kept_id(ref: str | None) -> int | None:
    match = _KEPT.match(ref or "")
    return int(match.group(1)) if match else None


class KeptFile(Protocol):
    @property
    def conversation_id(self) -> int: ...

    @property
    def data(self) -> bytes: ...


class KeptFiles(Protocol):
    """The store's side: files kept for channels whose platform does not keep them."""

    async def customer_file(self, file_id: int) -> KeptFile | None: ...


class FileUnavailableError(Exception):
    """The file cannot be fetched: its channel cannot, or the platform failed."""


class CustomerFiles:
    """Fetches customers' files through the bot's running connectors.

    Args:
        connectors: the bot's connectors by channel (read at each call: connectors are
            attached after plugins are set up).
        max_bytes: larger files are refused.
    """

    def __init__(
        self,
        connectors: Mapping[str, object],
        max_bytes: int = MAX_FILE_BYTES,
        *,
        kept: KeptFiles | None = None,
    ) -> None:
        self._connectors = connectors
        self._max_bytes = max_bytes
        self._kept = kept

    def _source(self, channel: str) -> FileSource | None:
        connector = self._connectors.get(channel)
        return connector if isinstance(connector, FileSource) else None

    def can_fetch(self, channel: str, attachment: Attachment) -> bool:
        """Whether ``attachment`` of a message on ``channel`` can be fetched here (a
        file its platform says is too big cannot)."""
        if _kept_id(attachment.ref) is not None:
            return self._kept is not None
        too_big = attachment.size is not None and attachment.size > self._max_bytes
        return attachment.ref is not None and not too_big and self._source(channel) is not None

    async def fetch(self, channel: str, attachment: Attachment, *, conversation_id: int) -> bytes:
        """The content of a file sent in conversation ``conversation_id``.

        Raises:
            FileUnavailableError: it cannot be fetched (the reason is logged; the
                message says what an agent can do about it).
        """
        file_id = _kept_id(attachment.ref)
        if file_id is not None:
            return await self._fetch_kept(file_id, conversation_id)
        source = self._source(channel)
        if attachment.ref is None or source is None:
            raise FileUnavailableError(f"files sent on {channel} cannot be opened here")
        try:
            return await source.fetch_file(attachment.ref, max_bytes=self._max_bytes)
        except ConnectorError as exc:
            _log.warning("a customer's file could not be fetched: %s", exc)
            raise FileUnavailableError(
                f"{channel} did not give the file (it may be too big or no longer there)"
            ) from None

    async def _fetch_kept(self, file_id: int, conversation_id: int) -> bytes:
        if self._kept is None:
            raise FileUnavailableError("files kept by botkit cannot be opened here")
        try:
            kept = await self._kept.customer_file(file_id)
        except StoreError as exc:
            _log.warning("a customer's file could not be read: %s", exc)
            raise FileUnavailableError("the conversation store is unavailable; try again") from None
        # A ref is only ever written by botkit, but a file is still served only with the
        # conversation it was sent in.
        if kept is None or kept.conversation_id != conversation_id:
            raise FileUnavailableError("the file is no longer kept (the conversation was erased?)")
        return kept.data
