"""Helpers for the web connector tests: a started bot serving the real app, WS visitors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from connectors.web import WebConnector

ORIGIN = "https://shop.example"
SITE_KEY = "shop"
SECRET = "botkit-test-secret-0123456789"
JWT_SECRET = "botkit-test-jwt-secret-9876543210"  # user_token_secret: never site_secret

Frame = dict[str, Any]
MakeWeb = Callable[..., Awaitable["WebHarness"]]

# Generous limits so tests that are not about limits never hit one.
_RELAXED: dict[str, Any] = {
    "allowed_origins": [ORIGIN],
    "site_key": SITE_KEY,
    "site_secret": "${BOTKIT_TEST_SITE_SECRET}",
    "user_token_secret": "${BOTKIT_TEST_USER_TOKEN_SECRET}",
    "connection_rate": {"rate": 1000, "burst": 1000},
    "ip_rate": {"rate": 1000, "burst": 1000},
    "connect_rate": {"rate": 1000, "burst": 1000},
    "max_connections_per_ip": 1000,
    "heartbeat_s": 5,
}


def web_settings(
    db: Path,
    web: dict[str, Any],
    word_delay: float = 0.0,
    plugins: dict[str, Any] | None = None,
    bot: dict[str, Any] | None = None,
) -> Settings:
    """``bot``: keys of the ``[bot]`` table besides the (disabled) rate limit."""
    return settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{db}"},
            "backend": {"kind": "echo", "echo": {"word_delay_seconds": word_delay}},
            "bot": {"rate_limit": {"enabled": False}, **(bot or {})},
            "connectors": {"web": {**_RELAXED, **web}},
            "plugins": plugins or {},
        },
        environ={"BOTKIT_TEST_SITE_SECRET": SECRET, "BOTKIT_TEST_USER_TOKEN_SECRET": JWT_SECRET},
    )


async def serve(stack: AsyncExitStack, bot: Bot) -> WebHarness:
    """Start ``bot`` and serve its web app on loopback until ``stack`` closes."""
    await stack.enter_async_context(bot)
    connector = bot.connectors["web"]
    assert isinstance(connector, WebConnector)
    client = TestClient(TestServer(connector.make_app()))
    await client.start_server()
    stack.push_async_callback(client.close)
    return WebHarness(bot, connector, client)


@dataclass
class WebHarness:
    """A started ``Bot`` (echo backend, temp SQLite) whose web app is served on loopback."""

    bot: Bot
    connector: WebConnector
    client: TestClient[Any, Any]

    async def visitor(self, *, origin: str | None = ORIGIN, **hello: Any) -> Visitor:
        """Open a socket and send the hello (site key filled in); returns after welcome."""
        v = await self.open(origin=origin)
        await v.hello(**hello)
        return v

    async def open(self, *, origin: str | None = ORIGIN) -> Visitor:
        headers = {"Origin": origin} if origin else {}
        ws = await self.client.ws_connect("/ws", headers=headers, autoclose=False)
        return Visitor(ws)

    async def session(self, **body: Any) -> str:
        """A session token from ``POST /api/session``."""
        resp = await self.client.post(
            "/api/session", json={"site_key": SITE_KEY, **body}, headers={"Origin": ORIGIN}
        )
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["token"])

    async def post(self, token: str, client_id: str, text: str) -> Frame:
        resp = await self.client.post(
            "/api/messages",
            json={"client_id": client_id, "text": text},
            headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN},
        )
        assert resp.status in (200, 201), await resp.text()
        data: Frame = await resp.json()
        return data

    async def history(self, token: str, after_seq: int = 0, wait: float = 0) -> list[Frame]:
        resp = await self.client.get(
            "/api/messages",
            params={"after_seq": after_seq, "wait": wait},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 200, await resp.text()
        messages: list[Frame] = (await resp.json())["messages"]
        return messages


@dataclass
class Visitor:
    """A widget-like WebSocket client that records every frame it gets."""

    ws: ClientWebSocketResponse
    frames: list[Frame] = field(default_factory=list)
    token: str | None = None
    close_code: int | None = None

    async def hello(self, **fields: Any) -> Frame:
        await self.ws.send_json({"type": "hello", "site_key": SITE_KEY, **fields})
        welcome = await self.next()
        assert welcome["type"] == "welcome", welcome
        self.token = welcome["token"]
        return welcome

    async def send(self, text: str, client_id: str) -> None:
        await self.ws.send_json({"type": "message", "client_id": client_id, "text": text})

    async def next(self, limit_s: float = 30.0) -> Frame:
        """The next frame; raises ``ConnectionError`` with the close code if it closed."""
        # Not receive(timeout=...): aiohttp restarts that timeout on every ping.
        async with asyncio.timeout(limit_s):
            msg = await self.ws.receive()
        if msg.type is not WSMsgType.TEXT:
            self.close_code = self.ws.close_code
            raise ConnectionError(f"socket closed: {msg.type} code={self.ws.close_code}")
        frame: Frame = json.loads(msg.data)
        self.frames.append(frame)
        return frame

    async def until(self, pred: Callable[[Frame], bool], limit_s: float = 30.0) -> Frame:
        """Read frames until one matches ``pred``."""
        async with asyncio.timeout(limit_s):
            while True:
                frame = await self.next(limit_s)
                if pred(frame):
                    return frame

    async def wait_closed(self, limit_s: float = 30.0) -> int | None:
        """Drain until the server closes the socket; returns the close code."""
        async with asyncio.timeout(limit_s):
            while True:
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    break
                if msg.type is WSMsgType.ERROR:
                    break
                if msg.type is WSMsgType.TEXT:
                    self.frames.append(json.loads(msg.data))
        self.close_code = self.ws.close_code
        return self.close_code

    def stored(self) -> list[Frame]:
        """Frames carrying stored messages, in arrival order."""
        return [f for f in self.frames if f["type"] == "message"]

    async def close(self) -> None:
        await self.ws.close()


def reply_to(seq: int) -> Callable[[Frame], bool]:
    """Predicate: the stored reply to the message with ``seq``."""
    return lambda f: f["type"] == "message" and f.get("in_reply_to_seq") == seq


# -- a raw WebSocket client for hostile frames (aiohttp's client will not send them) ------


async def raw_ws(host: str, port: int, origin: str = ORIGIN) -> tuple[Any, Any]:
    """Open a socket and do the handshake by hand; returns (reader, writer)."""
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    assert accept.encode() in head
    return reader, writer


def frame_header(opcode: int, length: int, fin: bool = True) -> bytes:
    """A masked client frame header (mask key all zeros, so payload bytes go as-is)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\0\0\0\0"


async def read_close_code(reader: Any, limit_s: float = 30.0) -> int | None:
    """Read server frames until a close frame; returns its code (None on EOF)."""
    async with asyncio.timeout(limit_s):
        while True:
            head = await reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(length)
            if head[0] & 0x0F == 0x8:
                return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else None


@asynccontextmanager
async def shop_site(
    connector: WebConnector,
    page: Callable[[web.Request], Awaitable[web.StreamResponse]],
    *,
    widget_under: str | None = None,
) -> AsyncIterator[str]:
    """A shop's site on localhost for the browser tests: ``page`` at ``/`` (and, with
    ``widget_under``, the connected ``connector``'s app under that path, as behind a
    reverse proxy), allowed as an origin of ``connector``; yields the site's origin.
    Disconnects ``connector`` when done."""
    app = web.Application()
    app.router.add_get("/", page)
    if widget_under:
        app.add_subapp(widget_under, connector.make_app())
    server = TestServer(app, host="localhost")
    await server.start_server()
    origin = f"http://localhost:{server.port}"
    connector.service.origins.add(origin)
    try:
        yield origin
    finally:
        await connector.disconnect()
        await server.close()
