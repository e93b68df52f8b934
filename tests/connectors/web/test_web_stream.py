"""Streaming, resume without gaps or duplicates, idempotent resends (real bot + store)."""

from __future__ import annotations

import asyncio
import random

from aiohttp.test_utils import TestClient, TestServer
from web_helpers import SITE_KEY, Frame, MakeWeb, WebHarness, reply_to

from botkit.bot import Bot
from botkit.channel import HistoryItem, IntakeReceipt
from botkit.events import InboundMessage
from connectors.web import WebConnector


async def test_reply_streams_in_order_then_stored_message(make_web: MakeWeb) -> None:
    web = await make_web(word_delay=0.02)
    v = await web.visitor(lang="en")
    text = "one two three four five six seven"
    await v.send(text, "c-1")
    ack = await v.until(lambda f: f["type"] == "ack")
    assert ack == {"type": "ack", "client_id": "c-1", "seq": 1, "duplicate": False}
    end = await v.until(lambda f: f["type"] == "stream_end")

    kinds = [f["type"] for f in v.frames]
    # welcome, own message (seq 1), ack, then the reply: typing, deltas, stored, end.
    first = kinds.index("stream")
    assert kinds[first + 1 : -2] == ["delta"] * (len(kinds) - first - 3)
    assert kinds[-2:] == ["message", "stream_end"]
    deltas = [f["text"] for f in v.frames if f["type"] == "delta"]
    # Words 20 ms apart go out as they come (pieces ready together may share a frame).
    assert len(deltas) >= 5
    final = v.frames[-2]
    assert v.frames[first]["text"] + "".join(deltas) == final["text"] == f"echo: {text}"
    assert final["seq"] == 2 and final["in_reply_to_seq"] == 1 and final["direction"] == "out"
    stream_ids = {f["stream_id"] for f in v.frames[first:]}
    assert stream_ids == {end["stream_id"]}
    assert [f["seq"] for f in v.stored()] == [1, 2]


async def test_reconnect_resumes_after_last_seq(web: WebHarness) -> None:
    v = await web.visitor()
    for i in range(2):
        await v.send(f"hello {i}", f"m{i}")
        await v.until(reply_to(2 * i + 1))
    token = v.token
    assert token is not None
    await v.close()

    # Replies produced while no socket is open are stored and wait in history.
    for i in range(2, 4):
        await web.post(token, f"m{i}", f"offline {i}")
        await _wait_for_seq(web, token, 2 * i + 2)

    again = await web.visitor(token=token, after_seq=4)
    await again.until(lambda f: f.get("seq") == 8)
    got = again.stored()
    assert [f["seq"] for f in got] == [5, 6, 7, 8]
    assert [f["text"] for f in got] == [
        "offline 2",
        "echo: offline 2",
        "offline 3",
        "echo: offline 3",
    ]
    # And the live stream goes on from there.
    await again.send("live", "m4")
    await again.until(reply_to(9))
    assert [f["seq"] for f in again.stored()] == [5, 6, 7, 8, 9, 10]


async def _wait_for_seq(web: WebHarness, token: str, seq: int) -> None:
    """Long-poll the HTTP API until message ``seq`` is stored."""
    for _ in range(10):
        if any(m["seq"] == seq for m in await web.history(token, seq - 1, wait=2)):
            return
    raise AssertionError(f"message {seq} never stored")


async def test_flapping_socket_sees_every_message_exactly_once(make_web: MakeWeb) -> None:
    """A client that drops and resumes at random moments while replies stream in."""
    web = await make_web(word_delay=0.002)
    token = await web.session()
    total = 2 * 12
    rng = random.Random(7)

    async def produce() -> None:
        for i in range(12):
            await web.post(token, f"p{i}", f"message number {i} with a few words")
            await asyncio.sleep(rng.uniform(0, 0.03))

    producer = asyncio.create_task(produce())
    seen: list[int] = []
    connections = 0
    async with asyncio.timeout(60):
        while not seen or seen[-1] < total:
            connections += 1
            v = await web.visitor(token=token, after_seq=seen[-1] if seen else 0)
            try:
                async with asyncio.timeout(rng.uniform(0.01, 0.08)):
                    while True:
                        await v.next()
            except TimeoutError:
                pass
            await v.close()
            got = [f["seq"] for f in v.stored()]
            # Each connection continues exactly where the previous one stopped.
            expected_start = (seen[-1] if seen else 0) + 1
            assert got == list(range(expected_start, expected_start + len(got))), got
            seen.extend(got)
    await producer
    assert seen == list(range(1, total + 1))
    assert connections > 3
    history = await web.history(token)
    assert [m["seq"] for m in history] == seen


async def test_duplicate_client_id_is_stored_and_answered_once(web: WebHarness) -> None:
    v = await web.visitor()
    await v.send("same message", "dup-1")
    first = await v.until(lambda f: f["type"] == "ack")
    await v.until(reply_to(1))
    # A resend (e.g. after a dropped connection) on a new socket...
    token = v.token
    assert token is not None
    await v.close()
    again = await web.visitor(token=token, after_seq=2)
    await again.send("same message", "dup-1")
    second = await again.until(lambda f: f["type"] == "ack")
    # ...and once more over HTTP.
    third = await web.post(token, "dup-1", "same message")
    assert (first["seq"], first["duplicate"]) == (1, False)
    assert (second["seq"], second["duplicate"]) == (1, True)
    assert (third["seq"], third["duplicate"]) == (1, True)
    await asyncio.sleep(0.2)  # a second reply, if one were scheduled, would land by now
    history = await web.history(token)
    assert [(m["seq"], m["direction"]) for m in history] == [(1, "in"), (2, "out")]
    assert not [f for f in again.frames if f["type"] in ("stream", "delta", "message")]


async def test_client_ids_are_scoped_to_the_visitor(web: WebHarness) -> None:
    alice = await web.visitor()
    await alice.send("from alice", "shared-id")
    await alice.until(reply_to(1))
    bob = await web.visitor()
    await bob.send("from bob", "shared-id")
    ack = await bob.until(lambda f: f["type"] == "ack")
    assert ack["duplicate"] is False  # alice's id does not swallow bob's message
    reply = await bob.until(reply_to(1))
    assert reply["text"] == "echo: from bob"


async def test_second_tab_sees_messages_and_replies(web: WebHarness) -> None:
    tab1 = await web.visitor()
    tab2 = await web.visitor(token=tab1.token)
    await tab1.send("from tab one", "t1")
    await tab2.until(reply_to(1))
    mine: list[Frame] = tab2.stored()
    assert [(f["seq"], f["text"]) for f in mine] == [(1, "from tab one"), (2, "echo: from tab one")]
    assert mine[0]["client_id"] == "t1"


async def test_late_joiner_gets_the_reply_in_flight(make_web: MakeWeb) -> None:
    web = await make_web(word_delay=0.05)
    v = await web.visitor()
    await v.send("a b c d e f", "slow")
    await v.until(lambda f: f["type"] == "delta" and f["text"].startswith("b"))
    late = await web.visitor(token=v.token, after_seq=1)
    snapshot = await late.until(lambda f: f["type"] == "stream")
    assert snapshot["text"].startswith("echo: a b")  # what was generated before it joined
    final = await late.until(reply_to(1))
    streamed = snapshot["text"] + "".join(f["text"] for f in late.frames if f["type"] == "delta")
    assert streamed == final["text"] == "echo: a b c d e f"


class GatedCore:
    """The real bot, with gates that hold ``submit`` / ``history`` answers back.

    Used to force the two races the resume logic exists for; all work is the bot's own.
    """

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.submit_gate = asyncio.Event()
        self.history_gate = asyncio.Event()
        self.submit_gate.set()
        self.history_gate.set()

    async def submit(self, message: InboundMessage) -> IntakeReceipt:
        receipt = await self.bot.submit(message)
        await self.submit_gate.wait()
        return receipt

    async def history(
        self, channel: str, conversation_key: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryItem]:
        await self.history_gate.wait()
        return await self.bot.history(channel, conversation_key, after_seq=after_seq, limit=limit)

    async def last_seq(self, channel: str, conversation_key: str) -> int:
        return await self.bot.last_seq(channel, conversation_key)

    async def ready(self) -> bool:
        return await self.bot.ready()


async def _gated(web: WebHarness) -> tuple[WebHarness, GatedCore]:
    core = GatedCore(web.bot)
    connector = WebConnector(web.connector.config, core)
    web.bot.attach_connector(connector)  # replies for "web" now go through this one
    client = TestClient(TestServer(connector.make_app()))
    await client.start_server()
    return WebHarness(web.bot, connector, client), core


async def test_message_stored_during_history_replay_is_sent_once(web: WebHarness) -> None:
    gated, core = await _gated(web)
    try:
        token = await gated.session()
        await gated.post(token, "m0", "first")
        await _wait_for_seq(gated, token, 2)
        core.history_gate.clear()  # the next socket's replay stalls...
        v = await gated.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "token": token})
        assert (await v.next())["type"] == "welcome"
        # ...while a message and its reply are stored and published live to it.
        await gated.post(token, "m1", "second")
        (conversation,) = await gated.bot.store.conversations_with_status(["bot"])
        async with asyncio.timeout(30):  # both stored (the bot's own read: not gated)
            while len(await gated.bot.history("web", conversation.key)) < 4:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        core.history_gate.set()
        await v.until(lambda f: f.get("seq") == 4)
        await asyncio.sleep(0.1)
        await v.ws.send_json({"type": "ping"})
        await v.until(lambda f: f["type"] == "pong")
        assert [f["seq"] for f in v.stored()] == [1, 2, 3, 4]
    finally:
        await gated.client.close()


async def test_reply_overtaking_its_message_is_delivered_in_order(web: WebHarness) -> None:
    gated, core = await _gated(web)
    try:
        tab1 = await gated.visitor()
        tab2 = await gated.visitor(token=tab1.token)
        core.submit_gate.clear()  # tab1's message is stored but its broadcast waits...
        await tab1.send("overtake me", "o1")
        # ...so tab2 learns of the reply (seq 2) before the message (seq 1) is published.
        await tab2.until(lambda f: f["type"] == "stream_end")
        core.submit_gate.set()
        await tab1.until(lambda f: f["type"] == "ack")
        await tab2.ws.send_json({"type": "ping"})
        await tab2.until(lambda f: f["type"] == "pong")
        assert [(f["seq"], f["text"]) for f in tab2.stored()] == [
            (1, "overtake me"),
            (2, "echo: overtake me"),
        ]
    finally:
        await gated.client.close()


async def test_socket_that_falls_behind_is_closed_and_resumes(make_web: MakeWeb) -> None:
    web = await make_web(send_queue_size=8)
    gated, core = await _gated(web)
    try:
        token = await gated.session()
        core.history_gate.clear()  # this socket's writer is stuck: it cannot keep up
        v = await gated.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "token": token})
        # Subscribed once welcomed: the message below is published to this socket (posted
        # before the server read the hello, it went only to the stuck history).
        assert (await v.next())["type"] == "welcome"
        await gated.post(token, "long", " ".join(f"w{i}" for i in range(40)))
        assert await v.wait_closed() == 1013  # dropped instead of buffering without bound
        core.history_gate.set()
        await _wait_for_seq(gated, token, 2)
        assert not gated.connector.service.sockets  # and its handler cleaned up
        again = await gated.visitor(token=token, after_seq=0)
        await again.until(lambda f: f.get("seq") == 2)
        assert [f["seq"] for f in again.stored()] == [1, 2]
    finally:
        await gated.client.close()
