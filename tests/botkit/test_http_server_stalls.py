"""Every botkit HTTP server cuts off a client that stops reading (botkit/_send_watch.py,
applied by server_runner), and only such a client.

Real servers (a plain app, the agent API and its inbox, the metrics) and real clients
over raw sockets with a 4 KiB receive buffer: one that sends its requests and never
reads (a zero TCP window, as a hostile client advertises), one that reads slowly. The
watch's period is cut to a fraction of a second. (The web connector's own cases:
tests/connectors/web/test_web_security_slow_readers.py.)
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from core_helpers import ApiBot

import botkit.http_server
from botkit._send_watch import SEND_WATCH
from botkit.bot import Bot
from botkit.config import Settings
from botkit.http_server import SendWatch, server_runner, watch_responses

PERIOD = 0.25
BODY = 8 * 1024 * 1024  # past what the kernel takes at once (its buffers: 4 MiB at most)
FILE_BYTES = 94_000  # the size of the web widget's script
CHUNK = 64 * 1024

# sendfile() and the kernel's count of what the client acknowledged: Linux only.
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the kernel's TCP counts")


def _get(path: str, count: int = 1, *, close: bool = False) -> bytes:
    """``count`` pipelined GETs of ``path``; with ``close``, the last asks to close."""
    one = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    last = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    return one * (count - 1) + (last if close else one)


async def _client(port: int, request: bytes) -> socket.socket:
    """A connection with a 4 KiB receive buffer that has sent ``request``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, request)
    return sock


async def _read(
    sock: socket.socket, *, pause: float = 0.0, quiet_s: float = 15.0
) -> tuple[str, bytes]:
    """Read until the server closes (``eof``), resets (``reset``) or sends nothing for
    ``quiet_s`` (``open``); ``pause`` after each read of at most 16 KiB."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    try:
        while True:
            async with asyncio.timeout(quiet_s):
                chunk = await loop.sock_recv(sock, 16 * 1024)
            if not chunk:
                return "eof", bytes(data)
            data += chunk
            if pause:
                await asyncio.sleep(pause)
    except TimeoutError:
        return "open", bytes(data)
    except ConnectionResetError:
        return "reset", bytes(data)
    finally:
        sock.close()


_TCP_ESTABLISHED = 1  # tcp_info's first byte, tcpi_state (linux/tcp.h)


def _state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


async def _cut_off(sock: socket.socket, within: float = 30.0) -> None:
    """Wait until the server has reset ``sock``'s connection, without reading from it
    (a read would make room in the client's window: progress, never a cut-off). The
    watch cuts off within two periods; a loaded machine can take longer, so this waits
    for it rather than for a fixed time. Linux: the kernel's own state of the socket."""
    async with asyncio.timeout(within):
        while _state(sock) == _TCP_ESTABLISHED:  # noqa: ASYNC110 - polled
            await asyncio.sleep(PERIOD / 5)


def _responses(data: bytes) -> int:
    return data.count(b"HTTP/1.1 200 OK\r\n")


def _size(request: web.Request) -> int:
    return int(request.query.get("bytes", BODY))


async def _body(request: web.Request) -> web.Response:
    return web.Response(body=b"b" * _size(request))


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        for _ in range(_size(request) // CHUNK):  # a handler writing as it goes, waiting in drain()
            await response.write(b"s" * CHUNK)
    except ConnectionResetError:  # cut off (as when a client goes): nothing to log
        return response
    await response.write_eof()
    return response


def _served_tasks() -> list[str]:
    """aiohttp's tasks serving a connection or a request."""
    names = (getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks())
    return [n for n in names if n.startswith("RequestHandler.")]


@pytest_asyncio.fixture
async def plain(tmp_path: Path) -> AsyncIterator[tuple[web.AppRunner, int]]:
    """A plain app behind server_runner: an 8 MiB body, the same streamed, and a file."""
    asset = tmp_path / "widget.js"
    asset.write_bytes(b"f" * FILE_BYTES)

    async def file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(asset)  # goes out with sendfile(), past asyncio's buffer

    app = web.Application()
    app.router.add_get("/body", _body)
    app.router.add_get("/stream", _stream)
    app.router.add_get("/file", file)
    runner = server_runner(app, shutdown_timeout=0.5, send_timeout_s=PERIOD)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner, int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


# What a client that never reads asks for: enough to fill the kernel's buffers and more.
_HOSTILE = {
    "body": _get("/body"),
    "stream": _get("/stream"),
    # A few dozen of the widget's script on one connection filled the kernel's buffer,
    # and sendfile() then waited for ever, holding the task and the open file.
    "pipelined-files": _get("/file", 100),
}


@linux_only
@pytest.mark.parametrize("request_bytes", _HOSTILE.values(), ids=_HOSTILE.keys())
async def test_a_client_that_never_reads_is_cut_off(
    plain: tuple[web.AppRunner, int], request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    runner, port = plain
    caplog.set_level(logging.WARNING)
    sock = await _client(port, request_bytes)
    await _cut_off(sock)  # stalled from the start: cut off (within two periods, unloaded)
    assert runner.server is not None
    async with asyncio.timeout(30):  # what the reset set going has ended
        while runner.server.connections or _served_tasks():  # noqa: ASYNC110 - polled
            await asyncio.sleep(PERIOD / 5)
    ended, data = await _read(sock)
    assert ended == "reset" and len(data) < BODY  # a reset: the kernel let go of it too
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# About 1.5 MB each: several periods at the pace below.
SLOW_BYTES = 24 * CHUNK
_SLOW = {
    "body": (_get(f"/body?bytes={SLOW_BYTES}", close=True), 1, SLOW_BYTES),
    "stream": (_get(f"/stream?bytes={SLOW_BYTES}", close=True), 1, SLOW_BYTES),
    "pipelined-files": (_get("/file", 16, close=True), 16, FILE_BYTES),
}


@pytest.mark.parametrize(("request_bytes", "count", "size"), _SLOW.values(), ids=_SLOW.keys())
async def test_a_client_that_reads_slowly_gets_everything(
    plain: tuple[web.AppRunner, int], request_bytes: bytes, count: int, size: int
) -> None:
    # A 4 KiB window, and a pause after each read: seconds for the lot, many periods.
    _, port = plain
    ended, data = await _read(await _client(port, request_bytes), pause=0.005)
    assert ended == "eof" and _responses(data) == count
    assert len(data) > count * size


@pytest.fixture
def short_send_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """botkit's own servers (agent API, metrics, webhooks) use SEND_TIMEOUT_S."""
    monkeypatch.setattr(botkit.http_server, "SEND_TIMEOUT_S", PERIOD)


@linux_only
@pytest.mark.usefixtures("short_send_timeout")
async def test_the_agent_inbox_cuts_off_a_client_that_never_reads(api_bot: ApiBot) -> None:
    # The inbox's page and script need no token: anyone who reaches the port could ask
    # for them a few dozen times on one connection and never read.
    async with api_bot() as api:
        port = int(api.base.rsplit(":", 1)[1])
        sock = await _client(port, _get("/inbox/inbox.js", 100))
        await _cut_off(sock)
        ended, data = await _read(sock)
        assert ended == "reset" and _responses(data) < 100

        # One that reads, slowly, gets every copy; the API goes on serving.
        ended, data = await _read(
            await _client(port, _get("/inbox/inbox.js", 40, close=True)), pause=0.005
        )
        assert ended == "eof" and _responses(data) == 40
        assert (await api.call("GET", "/v1/handoffs"))[0] == 200


@linux_only
@pytest.mark.usefixtures("short_send_timeout")
async def test_the_metrics_server_cuts_off_a_client_that_never_reads(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(metrics={"listen": "127.0.0.1:0"})) as bot:
        server = bot._metrics_server
        assert server is not None and server.port is not None
        sock = await _client(server.port, _get("/metrics", 300))
        await _cut_off(sock)
        ended, data = await _read(sock)
        assert ended == "reset" and _responses(data) < 300

        ended, data = await _read(
            await _client(server.port, _get("/metrics", 50, close=True)), pause=0.005
        )
        assert ended == "eof" and _responses(data) == 50


def test_an_app_with_its_own_watch_keeps_it() -> None:
    # The web connector's app watches with its send_timeout_s; server_runner adds none.
    app = web.Application()
    own = SendWatch(5.0)
    watch_responses(app, own)
    server_runner(app, shutdown_timeout=0.5, send_timeout_s=PERIOD)
    assert app[SEND_WATCH] is own and len(app.on_response_prepare) == 1
    plain_app = web.Application()
    server_runner(plain_app, shutdown_timeout=0.5, send_timeout_s=PERIOD)
    assert plain_app[SEND_WATCH].period == PERIOD and len(plain_app.on_response_prepare) == 1


class _Transport(asyncio.WriteTransport):
    """What SendWatch looks at where the kernel does not say (no socket): the bytes the
    transport holds unsent, and abort()."""

    def __init__(self) -> None:
        super().__init__()
        self.unsent = 0
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def abort(self) -> None:
        self.aborted = True


async def test_the_send_watch_looks_once_per_connection_and_from_each_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The looks are the timers the watch sets, run here one by one: by the clock, a
    # loaded machine could run a look late, after the step meant to come before it.
    loop = asyncio.get_running_loop()
    timers: list[tuple[float, Callable[..., object], tuple[object, ...]]] = []

    def call_later(delay: float, callback: Callable[..., object], *args: object) -> None:
        timers.append((delay, callback, args))

    monkeypatch.setattr(loop, "call_later", call_later)

    def look() -> None:  # the period is up: the looks that are due run
        due = list(timers)
        timers.clear()
        assert due and all(delay == PERIOD for delay, _, _ in due)
        for _, callback, args in due:
            callback(*args)

    watch = SendWatch(PERIOD)
    busy, idle = _Transport(), _Transport()
    for _ in range(1000):  # a keep-alive connection's many responses: one look at a time
        watch.watch(busy)
        watch.watch(idle)
    assert len(watch) == 2 and len(timers) == 2  # one timer per connection
    busy.unsent = 100_000
    look()  # the first look forgot the idle one
    assert len(watch) == 1 and not idle.aborted and len(timers) == 1
    busy.unsent = 40_000  # the client took some
    look()
    busy.unsent = 900_000  # then the next response went out: more than before, no stall
    watch.watch(busy)
    assert len(timers) == 1  # still the one look
    look()
    assert not busy.aborted
    look()  # nothing taken since: cut off
    assert busy.aborted and len(watch) == 0 and not timers
