"""Several WebSocket text frames in one socket write.

aiohttp's ``send_str`` writes each frame with its own ``transport.write``, i.e. its own
``send()`` system call, and on loopback each one also wakes the client. A reply costs a
visitor's socket several frames that are ready at the same moment (the visitor's own
message and its ack; the stored reply and ``stream_end``; a page of history), so the
writer encodes them together and writes them at once: the client gets the very same
frames (RFC 6455, section 5.2), in the same order, with fewer system calls on both sides.
With the echo backend a message then costs its socket 2 writes instead of 5 (18 before
``_coalesce``); each write measured ~30 us of CPU in the server's event loop and
~75-140 us of its wall time, as the store's writer thread takes the GIL meanwhile.

Only public aiohttp API is used: the request's transport and the stream writer that
``WebSocketResponse.prepare`` returns, whose ``drain()`` waits while the transport is
over its high-water mark (a slow reader then backs the connection's queue up until it
is dropped with 1013, as before). Frames go out unmasked, uncompressed and
unfragmented, as a server sends them (the socket is prepared with ``compress=False``).

A client that stops reading altogether (a zero TCP window, while it keeps the socket
alive with frames of its own, which also satisfies the heartbeat) would hold that
``drain()``, and a close frame behind it, for ever: a ``drain()`` or a close that takes
longer than ``send_timeout_s`` resets the connection (a TCP reset,
``botkit.http_server.reset_connection``: a plain abort leaves the orphaned connection and
its send buffer in the kernel for minutes). A batch over ``WRITE_BYTES`` (a page of
history) is written about ``WRITE_BYTES`` at a time, in whole frames, so a slow but
reading client needs to take only that much per ``send_timeout_s`` (about 2 KiB/s by
default).
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from botkit.http_server import reset_connection

__all__ = ["WRITE_BYTES", "FrameOutput", "text_frames"]

WRITE_BYTES = 64 * 1024  # asyncio's default high-water mark: drain() waits past it

_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)
_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack


def text_frames(texts: list[str]) -> bytes:
    """The wire bytes of one unmasked, final text frame per string, in order."""
    parts: list[bytes] = []
    for text in texts:
        # "replace": a lone surrogate that slipped past sanitizing (say, in a plugin's
        # notice) becomes "?" instead of failing the socket's writer (it costs ~6 ns).
        data = text.encode("utf-8", "replace")
        size = len(data)
        if size < 126:
            parts.append(bytes((_FIN_TEXT, size)))
        elif size < 1 << 16:
            parts.append(_LEN16(_FIN_TEXT, 126, size))
        else:
            parts.append(_LEN64(_FIN_TEXT, 127, size))
        parts.append(data)
    return b"".join(parts)


class FrameOutput:
    """The data-frame side of one prepared server socket.

    Args:
        ws: the prepared socket (its ``closed`` flag: no data after a close frame).
        transport: ``request.transport`` of the upgraded request.
        writer: what ``ws.prepare(request)`` returned; its ``drain`` is the flow control.
        send_timeout_s: how long one ``drain()`` or a close may wait for the client to
            take what was sent before the connection is reset.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        writer: AbstractStreamWriter,
        send_timeout_s: float,
    ) -> None:
        self._ws = ws
        self._transport = transport if isinstance(transport, asyncio.WriteTransport) else None
        self._writer = writer
        self._send_timeout_s = send_timeout_s

    async def send(self, texts: list[str]) -> None:
        """Write ``texts`` as text frames, about ``WRITE_BYTES`` (whole frames) per write,
        waiting after each while the client has not taken it.

        Raises:
            ConnectionResetError: the socket is closing or closed (no data may follow a
                close frame), or the client took nothing for ``send_timeout_s`` (the
                connection is reset).
        """
        transport = self._transport
        start, size = 0, 0
        for end, text in enumerate(texts, 1):
            size += len(text)  # characters: a byte count is not worth encoding twice
            if size >= WRITE_BYTES or end == len(texts):
                if transport is None or self._ws.closed or transport.is_closing():
                    raise ConnectionResetError("the socket is closing")
                # Whole frames only: aiohttp writes its pings (and pongs) between two
                # writes, which must never fall inside a frame.
                transport.write(text_frames(texts[start:end]))
                await self._drain(transport)
                start, size = end, 0

    async def _drain(self, transport: asyncio.WriteTransport) -> None:
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await self._writer.drain()
        except TimeoutError:
            reset_connection(transport)
            raise ConnectionResetError("the client stopped reading") from None

    async def pong(self, data: bytes) -> None:
        """Answer a client's ping. A connection that is gone, or a client that does not
        take the pong within ``send_timeout_s`` (then reset), shows at the next read."""
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await self._ws.pong(data)
        except TimeoutError:
            if self._transport is not None:
                reset_connection(self._transport)
        except ConnectionError:
            pass

    async def close(self, code: int, message: bytes) -> None:
        """Close the socket with ``code``; reset the connection if that takes longer than
        ``send_timeout_s`` (the client takes neither the close frame nor what was queued
        before it, or does not answer it)."""
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await self._ws.close(code=code, message=message)
        except TimeoutError:
            if self._transport is not None:
                reset_connection(self._transport)
