"""Requests aiohttp's HTTP parser refuses before any handler runs: answered by aiohttp
itself, the one exception to the web channel's JSON errors and security headers. This
pins what docs/web.md says of them, so an aiohttp that lets an application shape them
(aio-libs/aiohttp#3287, #6463) shows up here and the docs get updated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from web_helpers import WebHarness

DOCS = Path(__file__).resolve().parents[3] / "docs" / "web.md"

MALFORMED = {
    "url over 8 KiB": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header over 8 KiB": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"<i>" * 34_000 + b"\r\n\r\n",
    "bad chunk size": (
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\nzz<script>\r\n"
    ),
    "content-length and chunked": (
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "nul in a header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00<b>x</b>\x1b[31m\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_request_the_parser_refuses_is_answered_as_documented(
    web: WebHarness, raw: bytes
) -> None:
    server = web.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        async with asyncio.timeout(30):
            answer = await reader.read()  # aiohttp closes the connection after it
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(b":") for h in lines[1:])}
    assert lines[0].split(b" ", 2)[1] == b"400"
    assert headers[b"content-type"].startswith(b"text/plain")
    # The documented exception: not our JSON, without our headers ...
    assert b"x-content-type-options" not in headers and not body.startswith(b"{")
    # ... and what it quotes of the request is short and escaped: no raw control bytes.
    assert len(body) < 400
    assert not any(c < 0x20 and c not in b"\r\n" for c in body)
    assert b"\x1b" not in body and b"\x00" not in body
    docs = " ".join(DOCS.read_text().split())
    assert "answered by aiohttp itself" in docs and "aio-libs/aiohttp#3287" in docs
