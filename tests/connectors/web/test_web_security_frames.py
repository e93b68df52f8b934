"""A socket's frames of any kind are read no faster than frame_rate: a flood of pings
(protocol or JSON) from one socket cannot keep the server's event loop to itself."""

from __future__ import annotations

import asyncio
import json

import pytest
from web_helpers import SITE_KEY, MakeWeb, WebHarness, frame_header, raw_ws

_BUDGET = {"frame_rate": {"rate": 20, "burst": 20}}
_PROTOCOL_PING = frame_header(0x9, 4) + b"ping"
_JSON_PING = frame_header(0x1, len(b'{"type":"ping"}')) + b'{"type":"ping"}'


async def _welcomed(web: WebHarness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server = web.client.server
    reader, writer = await raw_ws(str(server.host), int(server.port or 0))
    hello = json.dumps({"type": "hello", "site_key": SITE_KEY}).encode()
    writer.write(frame_header(0x1, len(hello)) + hello)
    opcode, payload = await _read_frame(reader)
    assert opcode == 0x1 and json.loads(payload)["type"] == "welcome"
    return reader, writer


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    return head[0] & 0x0F, await reader.readexactly(size)


async def _answers_within(reader: asyncio.StreamReader, seconds: float) -> list[int]:
    """The opcodes of the frames the server sends in ``seconds``."""
    opcodes: list[int] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                opcodes.append((await _read_frame(reader))[0])
    except TimeoutError:
        pass
    return opcodes


@pytest.mark.parametrize("flood", [_PROTOCOL_PING, _JSON_PING], ids=["protocol", "json"])
async def test_a_ping_flood_is_read_at_the_frame_rate(make_web: MakeWeb, flood: bytes) -> None:
    # Before: every one of 5,000 protocol pings answered at once (~2.5 us each, from one
    # socket), and JSON pings overflowed the send queue and closed the socket (1013).
    web = await make_web(**_BUDGET)
    reader, writer = await _welcomed(web)
    loop = asyncio.get_running_loop()
    began = loop.time()
    writer.write(flood * 5000)
    answers = await _answers_within(reader, 1.0)
    elapsed = loop.time() - began  # more than 1 s when load makes the timeout late
    # The burst, then 20 a second: not the flood. The upper bound is the limiter's, for
    # the time actually taken; how many come sooner depends on the machine's load.
    assert len(answers) <= 20 + 20 * elapsed + 1, (len(answers), elapsed)
    async with asyncio.timeout(10):  # and the socket stays open, answering at that rate
        while len(answers) < 25:
            answers.append((await _read_frame(reader))[0])
    assert set(answers) == {0xA if flood is _PROTOCOL_PING else 0x1}
    writer.close()


async def test_pings_keep_neither_a_socket_without_hello_nor_an_idle_one(
    make_web: MakeWeb,
) -> None:
    # The client's protocol pings are answered by the server now, not by aiohttp: they
    # still do not stand in for a hello, nor count as activity.
    web = await make_web(hello_timeout_s=0.4, idle_timeout_s=0.4, heartbeat_s=5)
    server = web.client.server
    for welcomed in (False, True):
        if welcomed:
            reader, writer = await _welcomed(web)
        else:
            reader, writer = await raw_ws(str(server.host), int(server.port or 0))
        frames: list[tuple[int, bytes]] = []
        async with asyncio.timeout(30):
            while not frames or frames[-1][0] != 0x8:
                writer.write(_PROTOCOL_PING)
                frames.append(await _read_frame(reader))
        pongs = [payload for opcode, payload in frames if opcode == 0xA]
        assert pongs and set(pongs) == {b"ping"}  # answered, with the ping's payload
        assert int.from_bytes(frames[-1][1][:2], "big") == 4408
        writer.close()
