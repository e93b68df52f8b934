"""Telegram: a reply an agent's takeover cut before its first message is never posted."""

from __future__ import annotations

import asyncio

from tg_helpers import MakeTg


async def test_a_reply_cut_before_its_first_message_is_not_posted_after_the_agent(
    make_tg: MakeTg,
) -> None:
    tg = await make_tg({"edit_interval_s": 1.0}, word_delay=0.05)
    question = " ".join(f"word{i}" for i in range(40))
    tg.fake.push(tg.fake.updates.message(801, question))
    await tg.fake.wait_until(lambda: tg.fake.calls_to("sendChatAction"), 5)
    await asyncio.sleep(0.4)  # some words generated; nothing sent yet (first send at 1 s)
    assert tg.answers(801) == []
    conversation = await tg.bot.store.get_conversation("telegram", "801")
    assert conversation is not None
    await tg.bot.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)
    await tg.settle()
    await asyncio.sleep(1.2)
    assert tg.answers(801) == ["Ana here."], tg.answers(801)
