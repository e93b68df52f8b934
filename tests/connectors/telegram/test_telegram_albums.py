"""Photo albums (messages sharing a media_group_id) are one message to the core."""

from __future__ import annotations

import asyncio
from typing import Any

from tg_helpers import CoreProxy, MakeTg

from botkit.testing.telegram_updates import UpdateFactory

CHAT = 401


def album(
    u: UpdateFactory, chat_id: int, caption: str | None, size: int = 4
) -> list[dict[str, Any]]:
    photos = [u.photo(chat_id, caption=caption if i == 0 else None) for i in range(size)]
    for photo in photos:
        photo["message"]["media_group_id"] = "alb1"
    return photos


async def test_an_album_with_a_caption_gets_one_answer(make_tg: MakeTg) -> None:
    tg = await make_tg()
    tg.fake.push(*album(tg.fake.updates, CHAT, "My parcel arrived broken, see photos"))
    await tg.wait_answers(1, CHAT)
    await asyncio.sleep(1.5)  # longer than an album is held
    await tg.settle()
    assert tg.answers(CHAT) == ["echo: My parcel arrived broken, see photos"]
    [stored] = [item for item in await tg.history(CHAT) if item.direction == "in"]
    assert len(stored.attachments) == 4  # every photo, for an agent


async def test_a_caption_less_album_gets_one_only_text_reply(make_tg: MakeTg) -> None:
    tg = await make_tg()
    tg.fake.push(*album(tg.fake.updates, CHAT, None, size=3))
    await tg.wait_answers(1, CHAT)
    await asyncio.sleep(1.5)
    await tg.settle()
    [reply] = tg.answers(CHAT)
    assert "only read text" in reply


async def test_an_album_split_over_two_polls_is_still_one_message(make_tg: MakeTg) -> None:
    tg = await make_tg()
    photos = album(tg.fake.updates, CHAT, "broken", size=3)
    tg.fake.push(photos[0])
    await asyncio.sleep(0.3)  # the first photo was fetched alone
    tg.fake.push(*photos[1:])
    await tg.wait_answers(1, CHAT)
    await asyncio.sleep(1.5)
    await tg.settle()
    assert tg.answers(CHAT) == ["echo: broken"]


async def test_a_redelivered_album_is_not_answered_again(make_tg: MakeTg) -> None:
    tg = await make_tg()
    photos = album(tg.fake.updates, CHAT, "again?", size=2)
    tg.fake.push(*photos)
    await tg.wait_answers(1, CHAT)
    tg.fake.push(*photos)  # Telegram hands the same updates again (after a restart)
    await asyncio.sleep(1.5)
    await tg.settle()
    assert tg.answers(CHAT) == ["echo: again?"]


async def test_an_album_the_store_refuses_is_handed_again_and_answered_once(
    make_tg: MakeTg,
) -> None:
    tg = await make_tg(run=False)
    tg.connector.core = CoreProxy(tg.bot, fail_first=1)
    photos = album(tg.fake.updates, CHAT, "stored later", size=3)
    tg.fake.push(*photos)
    await tg.run()
    await tg.wait_answers(1, CHAT)
    await asyncio.sleep(1.5)
    await tg.settle()
    assert tg.answers(CHAT) == ["echo: stored later"]
    [stored] = [item for item in await tg.history(CHAT) if item.direction == "in"]
    assert len(stored.attachments) == 3  # the whole album again, not the first item


async def test_an_album_is_confirmed_only_once_stored(make_tg: MakeTg) -> None:
    tg = await make_tg()
    photos = album(tg.fake.updates, CHAT, "hold on", size=2)
    first_id = photos[0]["update_id"]
    tg.fake.push(*photos)
    await tg.fake.wait_until(lambda: tg.connector.albums.held == 1, 30)
    assert tg.fake.confirmed <= first_id  # Telegram still holds it while it is held
    await tg.wait_answers(1, CHAT)
    await tg.fake.wait_until(lambda: tg.fake.confirmed > photos[1]["update_id"], 30)


async def test_an_album_delivered_again_after_a_restart_is_not_answered_again(
    make_tg: MakeTg,
) -> None:
    first = await make_tg()
    photos = album(first.fake.updates, CHAT, "once only", size=2)
    first.fake.push(*photos)
    await first.wait_answers(1, CHAT)
    await first.settle()
    await first.stop()
    second = await make_tg()  # the same database: a restart
    second.fake.push(*photos)  # Telegram hands it again (not confirmed before the crash)
    second.fake.push(second.fake.updates.message(CHAT + 1, "probe"))
    await second.wait_answers(1, CHAT + 1)
    await asyncio.sleep(1.5)
    await second.settle()
    assert second.answers(CHAT) == ["echo: once only"]
