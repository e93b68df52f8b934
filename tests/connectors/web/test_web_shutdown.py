"""The web channel while the bot shuts down (``Bot.run`` after a stop: SIGTERM).

The bot stops taking messages, lets the replies in flight finish for
``[bot] shutdown_grace_seconds``, then disconnects. Meanwhile the web channel takes
nothing new (sockets, long polls, sessions, messages: 503 / error ``shutting_down``, to
retry, behind a load balancer on another replica) and serves what is open: a reply that
finishes within the grace reaches its socket; one the grace cuts ends with its stored
copy (``failed``, the text so far) before its ``stream_end``, then the socket closes 1001.

The real bot (echo backend, temporary SQLite) run by ``Bot.run`` on a loopback port.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, WSServerHandshakeError
from web_helpers import ORIGIN, SITE_KEY, Visitor, WebHarness, reply_to, serve, web_settings

from botkit.bot import Bot

WORDS = " ".join(f"word{n}" for n in range(40))


@asynccontextmanager
async def running(
    tmp_path: Path, *, word_delay: float, grace: float
) -> AsyncIterator[tuple[WebHarness, ClientSession]]:
    """A bot run by ``Bot.run`` (as ``botkit run`` does) with its web channel on a
    loopback port, and an HTTP client; the bot is stopped (if the test did not) and
    its run awaited on the way out."""
    async with AsyncExitStack() as stack:
        settings = web_settings(
            tmp_path / "web.db", {"port": 0}, word_delay, bot={"shutdown_grace_seconds": grace}
        )
        web = await serve(stack, Bot(settings))
        run = asyncio.create_task(web.bot.run())
        http = await stack.enter_async_context(ClientSession())
        try:
            async with asyncio.timeout(30):  # run() binds the port in the background
                while web.connector.port is None:  # noqa: ASYNC110 - polled
                    await asyncio.sleep(0.01)
            yield web, http
        finally:
            web.bot.stop()
            async with asyncio.timeout(60):
                await run


async def _visitor(web: WebHarness, http: ClientSession, **hello: Any) -> Visitor:
    ws = await http.ws_connect(f"{web.connector.url}/ws", headers={"Origin": ORIGIN})
    v = Visitor(ws)
    await v.hello(**hello)
    return v


async def _refused(resp: ClientResponse) -> None:
    """A 503 ``shutting_down`` with the wait in its header and its body."""
    assert resp.status == 503, await resp.text()
    body = await resp.json()
    assert (body["error"], body["retry_after"]) == ("shutting_down", 5.0), body
    assert "restarting" in body["message"]
    assert resp.headers["Retry-After"] == "5"


async def test_nothing_new_is_taken_during_the_grace_and_the_reply_in_flight_arrives(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, word_delay=0.1, grace=20) as (web, http):
        base, origin = web.connector.url, {"Origin": ORIGIN}
        v = await _visitor(web, http)
        token = v.token
        await v.send(WORDS, "m1")
        await v.until(lambda f: f["type"] == "delta")  # a reply is in flight (~4 s)
        web.bot.stop()  # SIGTERM: the grace period begins
        await asyncio.sleep(0.2)

        # A new socket is refused before its upgrade, so the widget connects again
        # later (behind a load balancer: to another replica), never welcomed here.
        await _refused(await http.get(f"{base}/ws", headers=origin))
        with pytest.raises(WSServerHandshakeError) as handshake:
            await http.ws_connect(f"{base}/ws", headers=origin)
        assert handshake.value.status == 503
        # Nor a new session, a new message over HTTP, a long poll, a file.
        await _refused(await http.post(f"{base}/api/session", json={"site_key": SITE_KEY}))
        bearer = {"Authorization": f"Bearer {token}", **origin}
        message = {"client_id": "m2", "text": "still there?"}
        await _refused(await http.post(f"{base}/api/messages", json=message, headers=bearer))
        polled = await http.get(f"{base}/api/messages?after_seq=1&wait=5", headers=bearer)
        await _refused(polled)
        # A message on the open socket: not taken, the widget keeps it and retries.
        await v.send("and this?", "m3")
        error = await v.until(lambda f: f["type"] == "error")
        assert (error["code"], error["client_id"], error["retry_after"]) == (
            "shutting_down", "m3", 5.0)  # fmt: skip

        # What was in flight still comes, whole, then the socket closes (going away).
        reply = await v.until(reply_to(1))
        assert (reply["status"], reply["text"]) == ("sent", f"echo: {WORDS}")
        assert await v.wait_closed() == 1001
    # Nothing of what was refused was stored.
    assert [f.get("client_id") for f in v.stored() if f["direction"] == "in"] == ["m1"]


async def test_a_reply_the_grace_cuts_ends_with_its_stored_copy(tmp_path: Path) -> None:
    """Before its stream_end, the socket gets the message the core stored for the cut
    reply (as at the end of any stream, with its stream_id): the client turns the
    streamed text into it, marked failed, which is what a replay shows from then on."""
    async with running(tmp_path, word_delay=0.1, grace=1.0) as (web, http):
        v = await _visitor(web, http)
        await v.send(WORDS, "m1")
        stream = await v.until(lambda f: f["type"] == "stream")
        await v.until(lambda f: f["type"] == "delta")
        web.bot.stop()  # the reply needs ~4 s: the grace (1 s) cuts it
        assert await v.wait_closed() == 1001
        token = v.token
    frames = [f for f in v.frames if f.get("stream_id") == stream["stream_id"]]
    kinds = [f["type"] for f in frames]
    assert kinds[-2:] == ["message", "stream_end"], kinds
    cut = frames[-2]
    streamed = stream["text"] + "".join(f["text"] for f in frames if f["type"] == "delta")
    assert (cut["status"], cut["in_reply_to_seq"], cut["seq"]) == ("failed", 1, 2)
    assert streamed and cut["text"].startswith(streamed) and cut["text"] != f"echo: {WORDS}"
    # The same as a replay (another replica, or this one restarted) shows.
    async with AsyncExitStack() as stack:
        settings = web_settings(tmp_path / "web.db", {})
        again = await serve(stack, Bot(settings))
        replayed = await again.history(token or "")
    assert replayed[1] == {k: val for k, val in cut.items() if k != "stream_id"}
