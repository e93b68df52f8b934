"""Photo albums (messages sharing a media_group_id) are one message to the core."""

from __future__ import annotations

import asyncio
from typing import Any

from tg_helpers import MakeTg

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
