"""The album collector's bounds: 10 items, ``max_hold_s`` under a trickle, ``max_albums``,
and albums told apart by chat (``AlbumCollector`` on its own, no server)."""

from __future__ import annotations

import asyncio

from botkit.events import Contact, InboundMessage
from connectors.telegram.album import AlbumCollector


def item(chat: str, update_id: int) -> InboundMessage:
    return InboundMessage(
        channel="telegram",
        conversation_key=chat,
        contact=Contact(channel="telegram", external_id="u1"),
        text="",
        idempotency_key=f"telegram:{update_id}",
    )


def collector(submitted: list[InboundMessage], **limits: float) -> AlbumCollector:
    async def submit(message: InboundMessage) -> None:
        submitted.append(message)

    return AlbumCollector(submit, **limits)  # type: ignore[arg-type]


async def test_an_album_is_submitted_at_its_tenth_item_without_waiting() -> None:
    submitted: list[InboundMessage] = []
    albums = collector(submitted, quiet_s=30.0, max_hold_s=30.0)
    done = [albums.add("g", 100 + i, item("1", 100 + i)) for i in range(10)]
    await asyncio.wait_for(asyncio.gather(*done), 5)
    [album] = submitted
    assert album.idempotency_key == "telegram:100"
    assert album.channel_ids["media_group_size"] == "10"
    assert albums.held == 0
    albums.add("g", 110, item("1", 110))  # an 11th starts another album
    assert albums.held == 1
    await albums.flush_all()


async def test_a_trickling_album_is_held_no_longer_than_max_hold_s() -> None:
    submitted: list[InboundMessage] = []
    albums = collector(submitted, quiet_s=0.3, max_hold_s=0.6)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = albums.add("g", 1, item("1", 1))
    for i in range(2, 20):  # one every 0.2 s: never quiet for 0.3 s
        if first.done():
            break
        await asyncio.sleep(0.2)
        albums.add("g", i, item("1", i))
    await asyncio.wait_for(first, 5)
    assert loop.time() - started < 2.5  # max_hold_s (0.6 s), not the trickle's 3.6 s
    await albums.flush_all()
    assert len(submitted) == 2  # the trickle's rest is another album


async def test_the_oldest_album_is_submitted_early_past_max_albums() -> None:
    submitted: list[InboundMessage] = []
    albums = collector(submitted, quiet_s=30.0, max_hold_s=30.0, max_albums=3)
    first = albums.add("g0", 1, item("1", 1))
    for i in range(1, 4):
        albums.add(f"g{i}", 1 + i, item("1", 1 + i))
    await asyncio.wait_for(first, 5)
    assert [m.idempotency_key for m in submitted] == ["telegram:1"]
    assert albums.held == 3
    await albums.flush_all()
    assert len(submitted) == 4


async def test_the_same_media_group_id_in_two_chats_is_two_albums() -> None:
    submitted: list[InboundMessage] = []
    albums = collector(submitted, quiet_s=0.05)
    done = [albums.add("same", 1, item("1", 1)), albums.add("same", 2, item("2", 2))]
    await asyncio.wait_for(asyncio.gather(*done), 5)
    assert sorted(m.conversation_key for m in submitted) == ["1", "2"]
