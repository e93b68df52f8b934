"""The files customers send, fetched for the human agents who answer them.

A customer's photo or document stays on their platform; the stored message keeps its
details and the platform's handle for it (``Attachment.ref``). When an agent opens it
(the agent API), the conversation's connector fetches it, if it can
(``botkit.channel.FileSource``: Telegram; Slack's files are opened in Slack itself,
through their link).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from botkit.channel import FileSource
from botkit.errors import ConnectorError
from botkit.events import Attachment

__all__ = ["MAX_FILE_BYTES", "CustomerFiles", "FileUnavailableError"]

# What Telegram's Bot API serves at most; also a bound on what one request holds.
MAX_FILE_BYTES = 20 * 1024 * 1024

_log = logging.getLogger("botkit.agents")


class FileUnavailableError(Exception):
    """The file cannot be fetched: its channel cannot, or the platform failed."""


class CustomerFiles:
    """Fetches customers' files through the bot's running connectors.

    Args:
        connectors: the bot's connectors by channel (read at each call: connectors are
            attached after plugins are set up).
        max_bytes: larger files are refused.
    """

    def __init__(self, connectors: Mapping[str, object], max_bytes: int = MAX_FILE_BYTES) -> None:
        self._connectors = connectors
        self._max_bytes = max_bytes

    def _source(self, channel: str) -> FileSource | None:
        connector = self._connectors.get(channel)
        return connector if isinstance(connector, FileSource) else None

    def can_fetch(self, channel: str, attachment: Attachment) -> bool:
        """Whether ``attachment`` of a message on ``channel`` can be fetched here (a
        file its platform says is too big cannot)."""
        too_big = attachment.size is not None and attachment.size > self._max_bytes
        return attachment.ref is not None and not too_big and self._source(channel) is not None

    async def fetch(self, channel: str, attachment: Attachment) -> bytes:
        """The file's content.

        Raises:
            FileUnavailableError: it cannot be fetched (the reason is logged; the
                message says what an agent can do about it).
        """
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
