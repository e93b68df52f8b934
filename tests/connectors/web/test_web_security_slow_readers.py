"""Clients that stop reading (a zero TCP window) are cut off, not buffered for ever.
(The watch itself, and botkit's other servers: tests/botkit/test_http_server_stalls.py.)

The server's socket buffer is shrunk to a few KiB, as a client advertising a zero window
makes it in effect, so what the server sends piles up in the transport's own buffer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from typing import Any

from web_helpers import ORIGIN, SITE_KEY, MakeWeb, WebHarness, frame_header

_FAST = {"heartbeat_s": 0.3, "send_timeout_s": 0.5, "max_message_bytes": 20_000}


def _server_connections(web: WebHarness) -> list[Any]:
    runner = web.client.server.runner
    assert runner is not None and runner.server is not None
    return list(runner.server.connections)


def _shrink_server_buffers(web: WebHarness) -> None:
    for handler in _server_connections(web):
        sock = handler.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def _connect(web: WebHarness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection with a small receive buffer, once the server has accepted it."""
    server = web.client.server
    before = len(_server_connections(web))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (str(server.host), int(server.port or 0)))
    reader, writer = await asyncio.open_connection(sock=sock)
    async with asyncio.timeout(30):
        while len(_server_connections(web)) == before:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)
    _shrink_server_buffers(web)
    return reader, writer


async def _upgrade(web: WebHarness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _connect(web)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
        ).encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


def _frame(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload).encode()
    return frame_header(0x1, len(data)) + data


async def _long_history(web: WebHarness) -> str:
    """A session token whose conversation holds ~600 kB of messages (with the echoes)."""
    token = await web.session()
    for n in range(20):
        await web.post(token, f"m{n}", "x" * 15_000)
    async with asyncio.timeout(30):
        while len(await web.history(token)) < 40:  # noqa: ASYNC110 - and the echoes
            await asyncio.sleep(0.05)
    return token


async def _gone(web: WebHarness, count: int, limit_s: float = 30.0) -> None:
    """Wait until the server holds only ``count`` connections (the test client's)."""
    async with asyncio.timeout(limit_s):
        while len(_server_connections(web)) > count:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)


async def test_a_socket_closed_on_a_client_that_reads_nothing_is_let_go(
    make_web: MakeWeb,
) -> None:
    # The heartbeat closes the socket of a client that neither reads nor answers, and
    # frees its per-IP place; its connection held the unsent replay for ever.
    web = await make_web(**_FAST)
    token = await _long_history(web)
    idle = len(_server_connections(web))
    _, writer = await _upgrade(web)
    writer.write(_frame({"type": "hello", "site_key": SITE_KEY, "token": token}))
    try:
        await _gone(web, idle)
    finally:
        writer.close()
    assert not web.connector.service.sockets and not web.connector.service.open_sockets


async def test_a_client_that_keeps_sending_but_never_reads_is_cut_off(make_web: MakeWeb) -> None:
    # Frames of its own keep the heartbeat and the idle timeout happy; the socket's
    # writer waited in drain() for ever, and so did the 1013 close behind it.
    web = await make_web(send_queue_size=8, **_FAST)
    token = await _long_history(web)
    idle = len(_server_connections(web))
    _, writer = await _upgrade(web)
    writer.write(_frame({"type": "hello", "site_key": SITE_KEY, "token": token}))

    async def chatter() -> None:
        while True:
            writer.write(_frame({"type": "ping"}))
            await asyncio.sleep(0.05)

    chatting = asyncio.create_task(chatter())
    try:
        await _gone(web, idle)
    finally:
        chatting.cancel()
        writer.close()
    assert not web.connector.service.sockets and not web.connector.service.open_sockets


async def test_an_http_response_nobody_reads_is_let_go(make_web: MakeWeb) -> None:
    # Cheap reads (a tenth of a message token each) of a long page: each one held its
    # page in memory, outside every per-IP count, for as long as the client wished.
    web = await make_web(**_FAST)
    token = await _long_history(web)
    idle = len(_server_connections(web))
    _, writer = await _connect(web)
    writer.write(
        (
            "GET /api/messages?limit=100 HTTP/1.1\r\nHost: chat.example\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    try:
        await _gone(web, idle)
    finally:
        writer.close()


async def test_an_http_client_reading_through_small_buffers_gets_everything(
    make_web: MakeWeb,
) -> None:
    # A send timeout ten times _FAST's: a reader that a loaded machine pauses for a
    # moment is still a reader.
    web = await make_web(**{**_FAST, "send_timeout_s": 5.0})
    token = await _long_history(web)
    reader, writer = await _connect(web)
    request = f"GET /api/messages?limit=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
    writer.write((request + "\r\nConnection: close\r\n\r\n").encode())
    data = bytearray()
    async with asyncio.timeout(60):
        while chunk := await reader.read(4096):
            data += chunk
            await asyncio.sleep(0.002)
    body = json.loads(bytes(data).split(b"\r\n\r\n", 1)[1])
    assert len(body["messages"]) == 40
    writer.close()


async def test_a_socket_read_slowly_gets_its_history_intact_between_pongs(
    make_web: MakeWeb,
) -> None:
    # The replay goes out a piece at a time while the client pings: every pong (or the
    # heartbeat's ping) the server writes in between must fall between two frames.
    web = await make_web(**{**_FAST, "heartbeat_s": 5.0, "send_timeout_s": 5.0})
    token = await _long_history(web)
    reader, writer = await _upgrade(web)
    writer.write(_frame({"type": "hello", "site_key": SITE_KEY, "token": token}))
    frames: list[dict[str, Any]] = []
    pongs = 0
    async with asyncio.timeout(60):
        while len(frames) < 41:  # the welcome and the 40 messages
            head = await reader.readexactly(2)
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2), "big")
            payload = bytearray()
            while len(payload) < size:  # a few KiB at a time, each time with a ping
                payload += await reader.readexactly(min(4096, size - len(payload)))
                writer.write(frame_header(0x9, 1) + b"p")
                await asyncio.sleep(0.002)
            opcode = head[0] & 0x0F
            if opcode == 0xA:
                pongs += 1
            else:
                assert opcode == 0x1, head
                frames.append(json.loads(payload))
    assert [f.get("seq") for f in frames[1:]] == list(range(1, 41))
    assert pongs >= 10
    writer.close()
