"""The widget's WebSocket endpoint (``GET /ws``); the protocol is in docs/web.md.

Client -> server frames (JSON text): ``hello`` (first, within ``hello_timeout_s``),
``message`` and ``ping``. Server -> client: ``welcome``, ``message`` (stored, with
``seq``), ``ack``, ``stream`` / ``delta`` / ``stream_end`` (a reply being generated),
``pong`` and ``error``. Close codes: 1001 the server shuts down, 1009 frame too large, 1003
binary frame, 1013 client too slow (also: the store is unavailable, a hello once the
shutdown began), 4400 bad hello, 4401 identity refused (also: the JWT a user signed in
with expired), 4408 no hello / idle. While the server shuts down, no socket is upgraded
(503 ``shutting_down``) and a message gets an error ``shutting_down``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from botkit.errors import BotkitError, NotAcceptingError
from botkit.http_json import loads_json
from connectors.web._frames import FrameOutput
from connectors.web._http import (
    CAP_RETRY_S,
    RETRY_AFTER_S,
    SHUTTING_DOWN,
    json_error,
    rate_limited,
    retry_later,
    shutting_down,
)
from connectors.web.config import RateLimit
from connectors.web.connection import Connection
from connectors.web.hub import Outgoing
from connectors.web.identity import IdentityError, Visitor
from connectors.web.intake import (
    InvalidMessage,
    clean_language,
    log_store_failure,
    parse_message,
    submit_message,
)
from connectors.web.ratelimit import TokenBucket
from connectors.web.service import SERVICE, WebService

__all__ = ["CLOSE_BAD_HELLO", "CLOSE_IDLE", "CLOSE_UNAUTHORIZED", "websocket_handler"]

log = logging.getLogger(__name__)

CLOSE_BAD_HELLO = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_IDLE = 4408


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade, identify the visitor, then serve their conversation until close."""
    svc = request.app[SERVICE]
    cfg = svc.config
    if svc.shutting_down:  # before the upgrade: the client reconnects (to another replica)
        return shutting_down()
    ip = svc.client_ip(request)
    wait = svc.ip_connects.take(ip)
    if wait:
        svc.refusals.connect_rate(ip)
        return rate_limited(wait, "connections")
    if svc.open_sockets[ip] >= cfg.max_connections_per_ip:
        svc.refusals.too_many_sockets(ip)
        return retry_later(
            "too_many_connections", "too many open sockets from this IP", CAP_RETRY_S
        )
    # max_msg_size + 1: aiohttp refuses payloads >= max_msg_size, we allow == limit.
    # compress=False: browsers offer permessage-deflate, but chat frames are a few hundred
    # bytes, where deflate saves little and costs a zlib call per frame and a
    # compressor (~256 KiB) per socket.
    # autoping=False: the client's pings are answered by _Frames, which counts them.
    ws = web.WebSocketResponse(
        heartbeat=cfg.heartbeat_s,
        max_msg_size=cfg.max_message_bytes + 1,
        compress=False,
        autoping=False,
    )
    if not ws.can_prepare(request).ok:
        return json_error(400, "websocket_required", "this endpoint speaks WebSocket")
    out = FrameOutput(ws, request.transport, await ws.prepare(request), cfg.send_timeout_s)
    svc.open_sockets[ip] += 1
    svc.sockets.add(ws)
    frames = _Frames(ws, out, cfg.frame_rate)
    conn: Connection | None = None
    try:
        hello = await _hello(ws, out, frames, svc)
        if hello is not None:
            visitor, after_seq, last_seq, language = hello
            token, expires = svc.identity.issue(visitor)
            conn = Connection(ws, out, svc, visitor.conversation_key, after_seq)
            conn.start(
                {
                    "type": "welcome",
                    "token": token,
                    "expires_at": expires,
                    "identity": visitor.kind,
                    "after_seq": after_seq,
                    "last_seq": last_seq,
                    "max_message_bytes": cfg.max_message_bytes,
                    "max_file_bytes": cfg.max_file_bytes,
                }
            )
            await _serve(out, frames, svc, conn, visitor, language, ip)
    finally:
        if conn is not None:
            await conn.stop()
        svc.open_sockets.release(ip)
        svc.sockets.discard(ws)
        if not ws.closed:
            await out.close(WSCloseCode.OK, b"")
        # Closed, by us or by the heartbeat, the connection still holds what the client
        # has not taken: it goes once the client stops taking it (botkit._send_watch).
        svc.send_watch.watch(request.transport)
    return ws


async def _refuse(
    ws: web.WebSocketResponse, out: FrameOutput, code: int, error: str, message: str
) -> None:
    await ws.send_json({"type": "error", "code": error, "message": message})
    await out.close(code, error.encode())


async def _hello(
    ws: web.WebSocketResponse, out: FrameOutput, frames: _Frames, svc: WebService
) -> tuple[Visitor, int, int, str | None] | None:
    """Wait for the hello frame; None when the socket was refused or closed.

    Returns the visitor, the ``after_seq`` to resume from (clamped to the conversation's
    last seq), that last seq, and the page's language.
    """
    try:
        # Not receive(timeout=...): aiohttp restarts that timeout on every pong, so a
        # client answering heartbeats could otherwise sit here without a hello forever.
        async with asyncio.timeout(svc.config.hello_timeout_s):
            msg = await frames.next()
    except TimeoutError:
        await _refuse(ws, out, CLOSE_IDLE, "hello_timeout", "send a hello frame first")
        return None
    if msg.type is WSMsgType.BINARY:
        await out.close(WSCloseCode.UNSUPPORTED_DATA, b"text frames only")
        return None
    if msg.type is not WSMsgType.TEXT:
        return None  # closed, or refused by aiohttp (e.g. 1009 too large)
    data = _loads(msg.data)
    if data is None or data.get("type") != "hello":
        await _refuse(ws, out, CLOSE_BAD_HELLO, "bad_hello", "the first frame must be a hello")
        return None
    if svc.shutting_down:  # opened just before the shutdown began: not welcomed now
        await _refuse(ws, out, WSCloseCode.TRY_AGAIN_LATER, "shutting_down", SHUTTING_DOWN)
        return None
    after_seq = data.get("after_seq", 0)
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
        await _refuse(ws, out, CLOSE_BAD_HELLO, "bad_hello", "after_seq must be an integer >= 0")
        return None
    try:
        visitor = svc.identity.resolve(
            site_key=data.get("site_key"),
            token=data.get("token"),
            user_id=data.get("user_id"),
            user_hash=data.get("user_hash"),
            user_token=data.get("user_token"),
        )
    except IdentityError as exc:
        svc.refusals.identity(exc.code, exc.log_detail)
        await _refuse(ws, out, CLOSE_UNAUTHORIZED, exc.code, str(exc))
        return None
    try:
        # A fresh anonymous visitor has no conversation yet: no need to ask the store.
        last_seq = 0 if visitor.new else await svc.last_seq(visitor.conversation_key)
    except BotkitError as exc:
        log.warning("web: reading the last seq failed: %s", exc)
        await _refuse(
            ws, out, WSCloseCode.TRY_AGAIN_LATER, "unavailable", "chat unavailable; retry"
        )
        return None
    # An after_seq past the end (a cache of another identity's conversation, a database
    # restored from backup) would hide every message up to it: resume from the end
    # instead; welcome.last_seq tells the client its cache is not this conversation's.
    return visitor, min(after_seq, last_seq), last_seq, clean_language(data.get("lang"))


# What a client's frame costs of its frame_rate: anything it sends, pings included.
_COUNTED = frozenset({WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG})


class _Frames:
    """The frames a client sends: its pings are answered, and nothing is read faster
    than ``frame_rate``.

    Every frame costs the server a parse, and most an answer: a client streaming pings
    (which no proxy in front counts, as it counts requests) would otherwise keep the
    event loop busy on its own, about 400,000 frames a second from one socket. Past the
    budget this stops reading the socket until the budget refills, so TCP holds the
    rest of the flood back in the client's own buffers; no error frame answers it.
    """

    def __init__(self, ws: web.WebSocketResponse, out: FrameOutput, rate: RateLimit) -> None:
        self.ws, self.out = ws, out
        self.budget = TokenBucket(rate.rate, rate.burst)

    async def next(self) -> WSMessage:
        """The next data frame, or what ends the socket (close, error)."""
        while True:
            msg = await self.ws.receive()
            if msg.type in _COUNTED:
                while wait := self.budget.take():  # noqa: ASYNC110 - a refilling bucket
                    await asyncio.sleep(wait)
            if msg.type is WSMsgType.PING:
                await self.out.pong(msg.data)
            elif msg.type is not WSMsgType.PONG:
                return msg


def _loads(text: str) -> dict[str, Any] | None:
    try:
        data = loads_json(text)
    except (ValueError, RecursionError):  # deep nesting ("[[[[...") raises RecursionError
        return None
    return data if isinstance(data, dict) else None


class _SignInWatch:
    """Closes the socket (4401 ``expired_token``) at ``not_after``, the ``exp`` of the
    JWT its user signed in with: the socket acts as that user no longer than the sign-in
    does. One timer per socket; a message read after that moment is not taken either
    (``expired``), should the loop run the timer late.

    At ``exp`` itself, not at the second before (the session token's ``expires_at``):
    a client reconnecting at once with the same JWT is then refused, never welcomed
    into a session that ends at once, over and over.
    """

    def __init__(self, out: FrameOutput, not_after: float) -> None:
        self.out, self.not_after = out, not_after
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(max(0.0, not_after - time.time()), self._close)
        self._closing: asyncio.Task[None] | None = None  # held so it is not collected

    def expired(self) -> bool:
        return time.time() >= self.not_after

    def _close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(
                self.out.close(CLOSE_UNAUTHORIZED, b"expired_token")
            )

    async def end(self) -> None:
        """Close the socket now (a message came after ``not_after``)."""
        self._handle.cancel()
        self._close()
        if self._closing is not None:
            await self._closing

    def cancel(self) -> None:
        self._handle.cancel()


class _IdleWatch:
    """Closes the socket after ``timeout`` s without a client frame.

    Protocol pongs do not count (aiohttp answers them internally), so a tab left open
    forever does not hold a socket forever. One timer per socket, re-armed lazily.
    """

    def __init__(self, out: FrameOutput, timeout: float) -> None:
        self.out, self.timeout = out, timeout
        self.last = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(timeout, self._check)
        self._closing: asyncio.Task[None] | None = None  # held so it is not collected

    def _check(self) -> None:
        idle = time.monotonic() - self.last
        if idle >= self.timeout:
            self._closing = self._loop.create_task(self.out.close(CLOSE_IDLE, b"idle"))
        else:
            self._handle = self._loop.call_later(self.timeout - idle, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


async def _serve(
    out: FrameOutput,
    frames: _Frames,
    svc: WebService,
    conn: Connection,
    visitor: Visitor,
    language: str | None,
    ip: str,
) -> None:
    cfg = svc.config
    bucket = TokenBucket(cfg.connection_rate.rate, cfg.connection_rate.burst)
    idle = _IdleWatch(out, cfg.idle_timeout_s)
    sign_in = None if visitor.not_after is None else _SignInWatch(out, visitor.not_after)
    try:
        while True:
            msg = await frames.next()
            idle.last = time.monotonic()
            if sign_in is not None and sign_in.expired():
                await sign_in.end()
                return
            if msg.type is WSMsgType.BINARY:
                await out.close(WSCloseCode.UNSUPPORTED_DATA, b"text frames only")
                return
            if msg.type is not WSMsgType.TEXT:
                return
            data = _loads(msg.data)
            kind = data.get("type") if data is not None else None
            if data is None or kind not in ("message", "ping"):
                conn.push(_error("bad_frame", "expected a JSON message or ping frame"))
            elif kind == "ping":
                conn.push(Outgoing({"type": "pong"}))
            else:
                await _on_message(svc, conn, visitor, language, ip, bucket, data)
    finally:
        idle.cancel()
        if sign_in is not None:
            sign_in.cancel()


def _error(code: str, message: str, **extra: Any) -> Outgoing:
    return Outgoing({"type": "error", "code": code, "message": message, **extra})


def _shutting_down(client_id: str) -> Outgoing:
    """A message the process no longer takes (its shutdown grace period): the socket
    still gets the replies in flight, then closes (1001); the client sends the message
    again after ``retry_after``, on this socket or the next one (another replica)."""
    return _error("shutting_down", SHUTTING_DOWN, client_id=client_id, retry_after=RETRY_AFTER_S)


async def _on_message(
    svc: WebService,
    conn: Connection,
    visitor: Visitor,
    language: str | None,
    ip: str,
    bucket: TokenBucket,
    data: dict[str, Any],
) -> None:
    try:
        client_id, text = parse_message(data)
    except InvalidMessage as exc:
        conn.push(_error(exc.code, str(exc)))
        return
    if svc.shutting_down:
        conn.push(_shutting_down(client_id))
        return
    # The socket's budget first; a message the client IP's budget then refuses gives the
    # socket's token back, as it was not taken.
    wait = bucket.take()
    if not wait:
        wait = svc.ip_messages.take(ip)
        if wait:
            bucket.refund(1.0)
    if wait:
        conn.push(
            _error(
                "rate_limited",
                f"too many messages; retry after {wait:.2f} s",
                retry_after=round(wait, 3),
                client_id=client_id,
            )
        )
        return
    try:
        receipt = await submit_message(svc, visitor, client_id, text, language)
    except NotAcceptingError:
        # Shutting down: the widget keeps it and sends it again later.
        conn.push(_shutting_down(client_id))
        return
    except BotkitError as exc:
        log_store_failure(log, "submit failed", exc)
        # As the HTTP API's 503 Retry-After: the widget waits instead of retrying every
        # second through a database outage.
        message = "message not stored; retry"
        conn.push(_error("unavailable", message, client_id=client_id, retry_after=RETRY_AFTER_S))
        return
    # The ack never carries a seq for the resume logic: it must always reach the sender,
    # even when the message itself already arrived through a history replay.
    conn.push(
        Outgoing(
            {
                "type": "ack",
                "client_id": client_id,
                "seq": receipt.seq,
                "duplicate": receipt.duplicate,
            }
        )
    )
