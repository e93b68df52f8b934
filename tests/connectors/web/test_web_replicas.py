"""Two bot processes (replicas) sharing one database, each serving the web app: what one
stores reaches the sockets and long polls the other holds, live, once and in order.

Real bots, store (one SQLite file) and web connectors; each replica is served on its own
loopback port, as behind a load balancer that sends a visitor's sockets anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from web_helpers import Frame, WebHarness, reply_to, serve, web_settings

from botkit._resume import RecoveryTiming
from botkit.bot import Bot
from connectors.web.hub import Hub, Outgoing

# Heartbeats every 0.1 s; a replica looks at its peers' changes every 0.05 s.
FAST = RecoveryTiming(
    heartbeat_seconds=0.1, stale_seconds=1.0, pass_seconds=0.2, peer_sync_seconds=0.05
)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[WebHarness, WebHarness]]:
    """Replicas ``a`` and ``b`` of one deployment (echo backend, 0.05 s a word)."""
    async with AsyncExitStack() as stack:
        settings = web_settings(tmp_path / "shared.db", {}, 0.05)
        a = await serve(stack, Bot(settings, recovery=FAST))
        b = await serve(stack, Bot(settings, recovery=FAST))
        yield a, b


def _stored(frames: list[Frame]) -> list[tuple[int, str]]:
    return [(f["seq"], f["text"]) for f in frames if f["type"] == "message"]


async def test_an_agent_message_sent_through_one_replica_reaches_a_socket_on_the_other(
    replicas: tuple[WebHarness, WebHarness],
) -> None:
    a, b = replicas
    v = await b.visitor()
    await v.send("I need a human, please", "m1")
    await v.until(reply_to(1))
    (conversation,) = await a.bot.store.conversations_with_status(["bot"])

    stored = await a.bot.agent_replies.send(
        conversation.id, "Hi, Ana here.", agent="Ana", take_over=True
    )
    live = await v.until(lambda f: f.get("seq") == stored.seq)
    assert (live["text"], live["agent"], live["direction"]) == ("Hi, Ana here.", "Ana", "out")
    await asyncio.sleep(0.3)  # several more looks: nothing is sent twice
    assert _stored(v.frames) == [
        (1, "I need a human, please"),
        (2, "echo: I need a human, please"),
        (3, "Hi, Ana here."),
    ]


async def test_a_visitor_tab_on_each_replica_sees_both_tabs_messages_in_order(
    replicas: tuple[WebHarness, WebHarness],
) -> None:
    a, b = replicas
    tab_a = await a.visitor()
    tab_b = await b.visitor(token=tab_a.token)
    await tab_a.send("from the tab on a", "t1")
    await tab_b.until(reply_to(1))
    await tab_b.send("from the tab on b", "t2")
    await tab_a.until(reply_to(3))
    expected = [
        (1, "from the tab on a"),
        (2, "echo: from the tab on a"),
        (3, "from the tab on b"),
        (4, "echo: from the tab on b"),
    ]
    await tab_b.until(reply_to(3))
    await asyncio.sleep(0.3)
    assert _stored(tab_a.frames) == expected
    assert _stored(tab_b.frames) == expected
    # Each tab's own reply came as its stream's end (one bubble), not a history fill.
    own_a = next(f for f in tab_a.frames if f["type"] == "message" and f["seq"] == 2)
    own_b = next(f for f in tab_b.frames if f["type"] == "message" and f["seq"] == 4)
    assert "stream_id" in own_a and "stream_id" in own_b


async def test_a_long_poll_on_one_replica_wakes_for_a_message_stored_by_the_other(
    replicas: tuple[WebHarness, WebHarness],
) -> None:
    a, b = replicas
    token = await b.session()
    await b.post(token, "c1", "hello there")
    (conversation,) = await a.bot.store.conversations_with_status(["bot"])
    async with asyncio.timeout(30):  # the echo reply (seq 2) is stored
        while len(await b.history(token)) < 2:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.02)
    # The poll would wait 30 s: woken, it ends long before (15 s is ample under load).
    polling = asyncio.create_task(b.history(token, after_seq=2, wait=30))
    await asyncio.sleep(0.2)
    assert not polling.done()
    await a.bot.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)
    messages = await asyncio.wait_for(polling, 15)  # long before its 30 s wait
    assert [(m["seq"], m["text"]) for m in messages] == [(3, "Ana here.")]


def test_the_hub_announces_only_news_and_never_during_a_local_stream() -> None:
    got: list[Outgoing] = []

    class Sub:
        def push(self, item: Outgoing) -> None:
            got.append(item)

    hub, sub = Hub(), Sub()
    assert not hub.advance("k", 3)  # nobody watches "k"
    hub.subscribe("k", sub)
    assert hub.watched() == ("k",)
    assert hub.advance("k", 3) and got[-1].fill_to == 3
    assert not hub.advance("k", 3) and not hub.advance("k", 2)  # nothing newer
    hub.publish("k", Outgoing({"type": "message"}, seq=4))  # went out here
    assert not hub.advance("k", 4)
    hub.stream_start("k", "s1", 4)
    assert not hub.advance("k", 5)  # its stored reply goes out with the stream's end
    hub.stream_end("k", "s1")
    assert hub.advance("k", 5) and got[-1].fill_to == 5
    hub.unsubscribe("k", sub)
    assert hub.watched() == () and not hub.advance("k", 6)
