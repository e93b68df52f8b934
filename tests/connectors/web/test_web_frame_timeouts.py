"""A socket whose client stopped reading is cut off with a TCP reset, not a plain abort.

When a send, a pong or a close frame waits longer than ``send_timeout_s`` on a client
that takes nothing (a zero TCP window), the connection is aborted. A plain ``abort()``
only closes the server's socket: the kernel then keeps the connection, and what it holds
for the client (up to its send buffer, 4 MB by default on Linux), probing the zero
window until it gives up on the orphan, minutes later; the client's end stays
ESTABLISHED. A reset (``SO_LINGER`` 0, as ``botkit._send_watch`` does for HTTP) lets go
of both at once, and the client learns at once that the connection is gone.

Seen from the client's own socket (``TCP_INFO``, Linux): closed by a reset, or still
established. The server's socket buffer is shrunk to a few KiB (see
test_web_security_slow_readers).
"""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest
from test_web_security_slow_readers import _FAST, _frame, _gone, _long_history, _upgrade
from web_helpers import SITE_KEY, MakeWeb

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_INFO's connection state is Linux's"
)

_TCP_ESTABLISHED, _TCP_CLOSE = 1, 7  # tcpi_state (linux/tcp_states.h)


def _state(writer: asyncio.StreamWriter) -> int:
    """The TCP state of the client's end of the connection."""
    sock = writer.get_extra_info("socket")
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


async def _reset_seen(writer: asyncio.StreamWriter, limit_s: float = 30.0) -> None:
    async with asyncio.timeout(limit_s):
        while _state(writer) != _TCP_CLOSE:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)


async def test_a_client_that_stopped_reading_is_reset(make_web: MakeWeb) -> None:
    """It sends its hello and then nothing, and reads nothing of the history replayed:
    the writer's wait for the client times out. (Nothing after that: data arriving on
    the closed socket would draw a reset from the kernel either way.)"""
    # No heartbeat within the test: it is the send timeout that cuts the client off.
    web = await make_web(send_queue_size=8, **{**_FAST, "heartbeat_s": 60})
    token = await _long_history(web)
    idle = len(web.client.server.runner.server.connections)  # type: ignore[union-attr]
    _, writer = await _upgrade(web)
    writer.write(_frame({"type": "hello", "site_key": SITE_KEY, "token": token}))
    try:
        await _gone(web, idle)
        # The server let go of its end; the client's end hears so at once.
        await _reset_seen(writer)
    finally:
        writer.close()
    assert not web.connector.service.sockets and not web.connector.service.open_sockets
