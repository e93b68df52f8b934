"""The defences every botkit HTTP server runs with (botkit.http_server), on a real aiohttp
server over raw sockets: what hostile clients send, byte for byte."""

from __future__ import annotations

import asyncio
import gzip
import logging
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from botkit.http_server import quiet_accept_errors, server_runner


async def _length(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


async def _broken(request: web.Request) -> web.Response:
    raise RuntimeError("a handler's own bug")


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws


@pytest_asyncio.fixture
async def port() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_post("/length", _length)
    app.router.add_get("/broken", _broken)
    app.router.add_get("/echo", _echo)
    runner = server_runner(app, shutdown_timeout=0.5, idle_timeout_s=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _exchange(port: int, data: bytes, *, limit_s: float = 30.0) -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), limit_s)
    finally:
        writer.close()


async def test_a_connection_that_never_finishes_its_request_is_closed(port: int) -> None:
    # Half a request head, then nothing: aiohttp's own default waits an hour. Closed by
    # the server (idle_timeout_s=0.5) long before the read gives up (a slow machine can
    # take seconds, never an hour).
    answer = await _exchange(port, b"GET /length HTTP/1.1\r\nHost: x\r\n", limit_s=30)
    assert answer == b""  # closed without an answer
    # An idle keep-alive connection after a request goes the same way.
    request = b"POST /length HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    answer = await _exchange(port, request, limit_s=30)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"bytes": 2}')


async def test_a_request_in_progress_is_not_idle(port: int) -> None:
    # A WebSocket (or a long poll, an upload) outlives the idle timeout: its handler runs.
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{port}/echo") as ws:
            await asyncio.sleep(1.5)  # three idle timeouts
            await ws.send_str("still here")
            assert (await ws.receive(timeout=30)).data == "still here"


async def test_a_compressed_body_is_taken_as_sent(port: int) -> None:
    # A gzip bomb would be inflated while being read; here the handler gets the bytes
    # that came (and refuses them, as the botkit handlers refuse any Content-Encoding).
    bomb = gzip.compress(b"\0" * 10_000_000)
    head = (
        f"POST /length HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(bomb)}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = await _exchange(port, head + bomb)
    assert answer.endswith(b'{"bytes": %d}' % len(bomb))


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a URL over 8 KiB
        b"POST /length HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    ],
    ids=["long-url", "bad-chunk", "bad-header"],
)
async def test_a_malformed_request_is_one_warning_line_not_a_traceback(
    port: int, request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        answer = await _exchange(port, request_bytes)
        assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:80]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1  # throttled: one a minute (an earlier test may have had it)


async def test_a_handlers_own_failure_is_still_logged_with_its_traceback(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await _exchange(port, b"GET /broken HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500")
    traced = [r for r in caplog.records if r.exc_info]
    assert traced and isinstance(traced[0].exc_info[1], RuntimeError)  # type: ignore[index]


async def test_failed_accepts_are_one_warning_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    quiet_accept_errors(loop)
    try:
        flood = OSError(24, "Too many open files")
        for _ in range(1000):  # what asyncio reports per failed accept() in a flood
            loop.call_exception_handler(
                {"message": "socket.accept() out of system resource", "exception": flood}
            )
        loop.call_exception_handler({"message": "something else went wrong"})
    finally:
        loop.set_exception_handler(previous)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("cannot accept new connections" in m for m in lines) == 1
    assert "Too many open files" in lines[0]
    assert "something else went wrong" in lines[-1]  # the default handler still logs it


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    # In a child process: the test run's own limit stays as it was.
    code = (
        "import resource\n"
        "from botkit.http_server import raise_open_file_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "before, after = raise_open_file_limit()\n"
        "assert before == min(256, hard), before\n"
        "assert after == resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n"
        "assert after == hard or hard == resource.RLIM_INFINITY, (after, hard)\n"
        "print(before, after)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
