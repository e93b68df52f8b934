"""Origins, size limits (with memory staying flat), rate limits, timeouts, bad frames."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from web_helpers import (
    ORIGIN,
    SITE_KEY,
    MakeWeb,
    WebHarness,
    frame_header,
    raw_ws,
    read_close_code,
    reply_to,
)

from connectors.web.ratelimit import KeyedLimiter

EVIL = "https://evil.example"


@pytest.mark.parametrize(
    "origin",
    [EVIL, "null", "https://shop.example.evil.example", "http://shop.example", "*", "garbage"],
)
async def test_wrong_origin_refused_on_ws_handshake_and_http(web: WebHarness, origin: str) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await web.client.ws_connect("/ws", headers={"Origin": origin})
    assert info.value.status == 403
    body = {"site_key": SITE_KEY}
    resp = await web.client.post("/api/session", json=body, headers={"Origin": origin})
    assert resp.status == 403
    assert (await resp.json())["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in resp.headers
    token = await web.session()
    resp = await web.client.get(
        "/api/messages", headers={"Origin": origin, "Authorization": f"Bearer {token}"}
    )
    assert resp.status == 403
    preflight = await web.client.options(
        "/api/messages",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403


async def test_allowed_origin_gets_cors(web: WebHarness) -> None:
    preflight = await web.client.options(
        "/api/messages",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    resp = await web.client.post(
        "/api/session", json={"site_key": SITE_KEY}, headers={"Origin": ORIGIN.upper()}
    )
    assert resp.status == 200
    assert resp.headers["Vary"] == "Origin"


async def test_missing_origin_policy(make_web: MakeWeb) -> None:
    web = await make_web(allow_missing_origin=False)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await web.client.ws_connect("/ws")
    assert info.value.status == 403
    v = await web.visitor(origin=ORIGIN)
    assert v.token


async def test_oversized_http_body_is_413(make_web: MakeWeb) -> None:
    web = await make_web(max_message_bytes=1024)
    token = await web.session()
    auth = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    big = {"client_id": "big", "text": "x" * 2000}
    resp = await web.client.post("/api/messages", json=big, headers=auth)
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    # Just under the limit is fine.
    ok = {"client_id": "ok", "text": "x" * 900}
    assert (await web.client.post("/api/messages", json=ok, headers=auth)).status == 201


async def test_oversized_ws_message_closes_1009(make_web: MakeWeb) -> None:
    web = await make_web(max_message_bytes=1024)
    v = await web.visitor()
    await v.ws.send_str('{"type":"message","client_id":"a","text":"' + "x" * 1024 + '"}')
    assert await v.wait_closed() == 1009
    # Also before the hello.
    v = await web.open()
    await v.ws.send_str("y" * 5000)
    assert await v.wait_closed() == 1009


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    chunk = b"a" * size
    for _ in range(total // size):
        yield chunk


async def test_oversized_input_keeps_memory_flat(make_web: MakeWeb) -> None:
    """40 MiB of refused input, sent so the client never holds more than 64 KiB of it."""
    web = await make_web(max_message_bytes=4096)
    server = web.client.server
    token = await web.session()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(5):  # chunked HTTP bodies with no declared length: 5 x 4 MiB
            try:
                resp = await web.client.post("/api/messages", data=_chunks(4 << 20), headers=auth)
                assert resp.status == 413
                resp.release()
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                pass  # the server may hang up before the client finished writing
        for declared in (4 << 20, 1 << 40):  # one frame claiming 4 MiB, one claiming 1 TiB
            reader, writer = await raw_ws(str(server.host), int(server.port or 0))
            writer.write(frame_header(0x1, declared))
            for _ in range(16):  # then push 1 MiB of it anyway
                writer.write(b"a" * 65536)
                try:
                    await writer.drain()
                except ConnectionError:
                    break
            assert await read_close_code(reader) == 1009
            writer.close()
        # Many small fragments that add up to too much: refused as they accumulate.
        reader, writer = await raw_ws(str(server.host), int(server.port or 0))
        writer.write(frame_header(0x1, 1000, fin=False) + b"a" * 1000)
        for _ in range(20):
            writer.write(frame_header(0x0, 1000, fin=False) + b"a" * 1000)
        assert await read_close_code(reader) == 1009
        writer.close()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Buffering any one refused body would show up as megabytes here.
    assert peak - baseline < 2 << 20, (peak - baseline) / 1e6
    assert current - baseline < 512 << 10, (current - baseline) / 1e6


async def test_ws_rate_limit_per_connection(make_web: MakeWeb) -> None:
    web = await make_web(connection_rate={"rate": 0.5, "burst": 3})
    v = await web.visitor()
    for i in range(5):
        await v.send(f"m{i}", f"c{i}")
    acks: list[str] = []
    errors: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while len(acks) + len(errors) < 5:
            f = await v.next()
            if f["type"] == "ack":
                acks.append(f["client_id"])
            elif f["type"] == "error":
                errors.append(f)
    assert acks == ["c0", "c1", "c2"]
    assert [e["client_id"] for e in errors] == ["c3", "c4"]
    assert all(e["code"] == "rate_limited" and 0 < e["retry_after"] <= 2 for e in errors)
    # Another socket has its own bucket.
    other = await web.visitor(token=v.token)
    await other.send("fine", "c9")
    assert (await other.until(lambda f: f["type"] in ("ack", "error")))["type"] == "ack"


async def test_a_message_the_ip_limit_refuses_costs_the_socket_nothing(
    make_web: MakeWeb,
) -> None:
    # Two messages per socket, ever (near enough); the client IP's budget refills fast.
    web = await make_web(connection_rate={"rate": 0.001, "burst": 2},
                         ip_rate={"rate": 5, "burst": 1})  # fmt: skip
    v = await web.visitor()

    def replies(frame: dict[str, Any]) -> bool:
        return frame["type"] in ("ack", "error")

    await v.send("one", "c1")
    assert (await v.until(replies))["type"] == "ack"
    await v.send("two", "c2")  # over the IP's budget: refused...
    refused = await v.until(replies)
    assert refused["code"] == "rate_limited"
    await asyncio.sleep(refused["retry_after"] + 0.05)
    await v.send("two", "c2")  # ...so the socket still has its second message
    assert (await v.until(replies))["type"] == "ack"


async def test_http_rate_limit_per_ip(make_web: MakeWeb) -> None:
    web = await make_web(ip_rate={"rate": 0.5, "burst": 3})
    token = await web.session()
    auth = {"Authorization": f"Bearer {token}"}
    statuses = []
    for i in range(4):
        body = {"client_id": f"h{i}", "text": "hi"}
        resp = await web.client.post("/api/messages", json=body, headers=auth)
        statuses.append(resp.status)
    assert statuses == [201, 201, 201, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    data = await resp.json()
    assert data["error"] == "rate_limited" and data["retry_after"] > 0
    # The same IP's sockets share the IP budget.
    v = await web.visitor()
    await v.send("over budget", "w1")
    assert (await v.until(lambda f: f["type"] in ("ack", "error")))["code"] == "rate_limited"


async def test_connection_limits_per_ip(make_web: MakeWeb) -> None:
    web = await make_web(max_connections_per_ip=2)
    a, b = await web.visitor(), await web.visitor()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await web.client.ws_connect("/ws", headers={"Origin": ORIGIN})
    assert info.value.status == 429
    # Every 429 says when to retry, in the header and in the body.
    refused = await web.client.get("/ws", headers={"Origin": ORIGIN})
    assert refused.status == 429 and refused.headers["Retry-After"] == "5"
    assert await refused.json() == {
        "error": "too_many_connections",
        "message": "too many open sockets from this IP",
        "retry_after": 5.0,
    }
    await a.close()
    async with asyncio.timeout(30):  # the server has seen the close
        while sum(web.connector.service.open_sockets.values()) > 1:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)
    c = await web.visitor()  # a freed slot can be used again
    assert b.token and c.token

    web = await make_web(connect_rate={"rate": 0.1, "burst": 2})
    await web.visitor()
    await web.session()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await web.client.ws_connect("/ws", headers={"Origin": ORIGIN})
    assert info.value.status == 429
    resp = await web.client.post("/api/session", json={"site_key": SITE_KEY})
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_waiting_long_polls_count_as_connections(make_web: MakeWeb) -> None:
    # A waiting poll holds a connection as a socket does: one address cannot hold
    # hundreds of them open.
    web = await make_web(max_connections_per_ip=2)
    socket = await web.visitor()
    assert socket.token is not None
    polling = asyncio.create_task(web.history(socket.token, wait=10))
    open_ = web.connector.service.open_sockets
    async with asyncio.timeout(30):  # until the poll waits (it counts from then)
        while sum(open_.values()) != 2:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.02)
    auth = {"Authorization": f"Bearer {socket.token}"}
    refused = await web.client.get("/api/messages", params={"wait": 10}, headers=auth)
    assert refused.status == 429 and refused.headers["Retry-After"] == "5"
    body = await refused.json()
    assert (body["error"], body["retry_after"]) == ("too_many_connections", 5.0)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await web.client.ws_connect("/ws", headers={"Origin": ORIGIN})
    # A poll that need not wait (a message is there) is not counted.
    await socket.send("hello", "c1")
    assert await polling  # the waiting poll got it and ended
    assert await web.history(socket.token)  # no wait: answered at once
    ended = await web.client.get("/api/messages", params={"wait": 0.2, "after_seq": 99},
                                 headers=auth)  # fmt: skip
    assert ended.status == 200  # its place was given back
    assert sum(open_.values()) == 1  # the socket


async def test_hello_and_idle_timeouts(make_web: MakeWeb) -> None:
    # Heartbeats more often than the timeouts: answering pings keeps no socket alive.
    # The idle timeout is ten times the client's 0.2 s between frames, so that a loaded
    # machine cannot let it pass between two of them.
    web = await make_web(hello_timeout_s=0.3, idle_timeout_s=2.0, heartbeat_s=0.1)
    silent = await web.open()
    assert await silent.wait_closed() == 4408
    v = await web.visitor()
    closed = asyncio.create_task(v.wait_closed(limit_s=30))  # reads, so it answers pings
    # Protocol-level pings do not keep a socket alive; client frames do.
    for _ in range(3):
        await asyncio.sleep(0.2)
        await v.ws.send_json({"type": "ping"})
    assert await closed == 4408
    assert [f["type"] for f in v.frames[1:]] == ["pong"] * 3


async def test_bad_frames(web: WebHarness) -> None:
    v = await web.open()
    await v.ws.send_json({"type": "message", "client_id": "x", "text": "no hello"})
    assert (await v.next())["code"] == "bad_hello"
    assert await v.wait_closed() == 4400
    for hello in ({"after_seq": -1}, {"after_seq": "5"}, {"after_seq": True}):
        v = await web.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, **hello})
        assert await v.wait_closed() == 4400, hello
    # Python's parser takes NaN and Infinity; they are not JSON, so not a hello either.
    v = await web.open()
    await v.ws.send_str(f'{{"type": "hello", "site_key": "{SITE_KEY}", "x": NaN}}')
    assert await v.wait_closed() == 4400

    v = await web.visitor()
    constants = ('{"type": "ping", "x": NaN}', '{"type": "ping", "x": -Infinity}')
    for junk in ("not json", "[]", '"str"', '{"type": "nope"}', "{" * 100, *constants):
        await v.ws.send_str(junk)
        assert (await v.next())["code"] == "bad_frame"
    bad_messages: list[dict[str, Any]] = [
        {"client_id": "", "text": "x"},
        {"client_id": "has space", "text": "x"},
        {"client_id": "x" * 65, "text": "x"},
        {"client_id": 5, "text": "x"},
        {"client_id": "ok", "text": None},
        {"client_id": "ok", "text": ["x"]},
    ]
    for bad in bad_messages:
        await v.ws.send_json({"type": "message", **bad})
        assert (await v.next())["code"] in ("bad_client_id", "bad_text"), bad
    # Hostile but valid text is stored and echoed back verbatim as data.
    await v.send("\x00 \u202e <b>x</b> \ud7ff", "odd")
    reply = await v.until(reply_to(1))
    assert "<b>x</b>" in reply["text"]
    await v.ws.send_bytes(b"\x00\x01")
    assert await v.wait_closed() == 1003


_JSON = {"Content-Type": "application/json"}


async def test_bad_http_bodies(web: WebHarness) -> None:
    token = await web.session()
    auth = {"Authorization": f"Bearer {token}"}
    post = web.client.post
    cases: list[tuple[dict[str, Any], int]] = [
        ({"data": b"not json", "headers": {"Content-Type": "application/json"}}, 400),
        ({"data": b"[1,2]", "headers": {"Content-Type": "application/json"}}, 400),
        ({"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400),
        # Not JSON, though Python's parser takes them by default.
        ({"data": b'{"client_id":"a","text":"b","x":NaN}', "headers": _JSON}, 400),
        ({"data": b'{"client_id":"c","text":"d","x":Infinity}', "headers": _JSON}, 400),
        ({"data": b'{"client_id":"a","text":"b"}', "headers": {"Content-Type": "text/plain"}}, 415),
        (
            {
                "data": gzip.compress(b'{"client_id":"a","text":"' + b"b" * 100_000 + b'"}'),
                "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            },
            415,
        ),
        ({"json": {"client_id": "a b", "text": "b"}}, 400),
        ({"json": {"client_id": "a", "text": 1}}, 400),
    ]
    for kwargs, status in cases:
        headers = {**auth, **kwargs.pop("headers", {})}
        resp = await post("/api/messages", headers=headers, **kwargs)
        assert resp.status == status, (kwargs, await resp.text())
        assert "error" in await resp.json()
    for query in ("after_seq=-1", "after_seq=x", "limit=0", "limit=1000", "wait=99", "wait=x"):
        resp = await web.client.get(f"/api/messages?{query}", headers=auth)
        assert resp.status == 400, query


async def test_heartbeat_drops_a_peer_that_stops_answering(make_web: MakeWeb) -> None:
    web = await make_web(heartbeat_s=0.2)
    server = web.client.server
    reader, writer = await raw_ws(str(server.host), int(server.port or 0))
    hello = json.dumps({"type": "hello", "site_key": SITE_KEY}).encode()
    writer.write(frame_header(0x1, len(hello)) + hello)
    opcodes = []
    try:
        async with asyncio.timeout(30):
            while True:  # read frames, never answer a ping
                head = await reader.readexactly(2)
                length = head[1] & 0x7F
                if length == 126:
                    length = int.from_bytes(await reader.readexactly(2), "big")
                await reader.readexactly(length)
                opcodes.append(head[0] & 0x0F)
    except asyncio.IncompleteReadError:
        pass  # the server hung up
    finally:
        writer.close()
    assert opcodes[0] == 0x1  # the welcome
    assert 0x9 in opcodes  # then a ping, unanswered, and the server dropped the socket
    async with asyncio.timeout(30):  # and forgot it
        while web.connector.service.sockets:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)
    # A client that answers pings (aiohttp does, while it reads) stays.
    v = await web.visitor()
    reading = asyncio.create_task(v.until(lambda f: f["type"] == "pong"))
    await asyncio.sleep(0.6)
    await v.ws.send_json({"type": "ping"})
    assert (await reading)["type"] == "pong"


def test_ip_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = KeyedLimiter(rate=1.0, burst=2, max_keys=100, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 1.0]
    for i in range(10_000):  # a flood of distinct addresses
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) <= 100
    now[0] += 2.0
    assert limiter.take("a") == 0.0  # refilled (or forgotten, which is the same)


async def test_forwarded_for_is_used_only_when_trusted(make_web: MakeWeb) -> None:
    for trusted in (True, False):
        web = await make_web(trust_forwarded_for=trusted, connect_rate={"rate": 0.01, "burst": 1})
        statuses = []
        for ip in ("203.0.113.1", "203.0.113.1", "203.0.113.2"):
            resp = await web.client.post(
                "/api/session",
                json={"site_key": SITE_KEY},
                headers={"X-Forwarded-For": f"10.9.9.9, {ip}"},
            )
            statuses.append(resp.status)
        # Trusted: limits per forwarded address. Untrusted: the header is ignored and all
        # three come from the proxy's own address.
        assert statuses == ([200, 429, 200] if trusted else [200, 429, 429])
