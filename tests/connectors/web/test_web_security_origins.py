"""The Origin allow-list matches exactly what browsers send, nothing urlsplit tidies up."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import ValidationError
from web_helpers import ORIGIN, SITE_KEY, MakeWeb, WebHarness

from connectors.web import WebConfig

KIOSK = "https://kiosk.example"


async def _raw_session(web: WebHarness, origin: bytes) -> bytes:
    """POST /api/session with ``origin`` as the raw bytes of its Origin header; the
    status line."""
    server = web.client.server
    reader, writer = await asyncio.open_connection(str(server.host), int(server.port or 0))
    body = b'{"site_key":"' + SITE_KEY.encode() + b'"}'
    writer.write(
        b"POST /api/session HTTP/1.1\r\nHost: chat.example\r\nOrigin: " + origin + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % len(body) + body
    )
    try:
        return (await reader.readline()).strip()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "origin",
    [
        "https://\u212aiosk.example".encode(),  # KELVIN SIGN: "K".lower() is an ASCII "k"
        b"https://kio\tsk.example",  # urlsplit drops tabs and line breaks anywhere
    ],
)
async def test_an_origin_no_browser_sends_is_refused(make_web: MakeWeb, origin: bytes) -> None:
    web = await make_web(allowed_origins=[ORIGIN, KIOSK])
    assert await _raw_session(web, KIOSK.encode()) == b"HTTP/1.1 200 OK"
    assert await _raw_session(web, origin) == b"HTTP/1.1 403 Forbidden"


async def test_an_international_site_is_configured_as_browsers_send_it(
    make_web: MakeWeb,
) -> None:
    # Browsers send an IDN origin in its ASCII form; configured as Unicode it could never
    # match, so the config says so instead of refusing every visitor of the site.
    with pytest.raises(ValidationError, match="xn--"):
        WebConfig(allowed_origins=["https://bücher.example"])
    web = await make_web(allowed_origins=["https://xn--bcher-kva.example"])
    origin = {"Origin": "https://xn--bcher-kva.example"}
    resp = await web.client.post("/api/session", json={"site_key": SITE_KEY}, headers=origin)
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == origin["Origin"]
    ws = await web.client.ws_connect("/ws", headers=origin)
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await web.client.ws_connect("/ws", headers={"Origin": "https://bücher.example"})
