"""Telegram and an agent's takeover: a reply the takeover cut before its first message
is never posted; a photo sent as an agent takes over or gives the conversation back is
stored, and the bot's "I can only read text" follows who has it where that is decided."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from tg_helpers import MakeTg

from botkit._delivery import ReplyDelivery
from botkit.events import InboundMessage, OutboundReply
from botkit.store import ConversationStatus, MessageStatus
from botkit.store.records import InboundFinish
from connectors.telegram import texts


async def test_a_reply_cut_before_its_first_message_is_not_posted_after_the_agent(
    make_tg: MakeTg, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_the_legacy_key(monkeypatch)
    # The first send is 3 s in and the reply's words take 10 s: far from the takeover
    # below, however slow the machine.
    tg = await make_tg({"edit_interval_s": 3.0}, word_delay=0.25)
    question = " ".join(f"word{i}" for i in range(40))
    tg.fake.push(tg.fake.updates.message(801, question))
    await tg.fake.wait_until(lambda: tg.fake.calls_to("sendChatAction"), 30)
    await asyncio.sleep(0.4)  # some words generated; nothing sent yet (first send at 3 s)
    assert tg.answers(801) == []
    conversation = await tg.bot.store.get_conversation("telegram", "801")
    assert conversation is not None
    await tg.bot.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)
    await tg.settle()
    await asyncio.sleep(3.5)  # past when the first send would have been
    assert tg.answers(801) == ["Ana here."], tg.answers(801)


def _without_the_legacy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies reach the connector without the older ``metadata["superseded"]`` (kept
    for connectors written before ``OutboundReply.superseded``), so that the test
    shows the connector reads the typed field."""
    final = ReplyDelivery.final

    async def typed_only(self: ReplyDelivery) -> OutboundReply:
        reply = await final(self)
        metadata = {k: v for k, v in reply.metadata.items() if k != "superseded"}
        return dataclasses.replace(reply, metadata=metadata)

    monkeypatch.setattr(ReplyDelivery, "final", typed_only)


# ------------------------------------------------- a photo as an agent takes over or leaves
# A photo (any message the bot cannot read) is stored whoever has the conversation; the
# bot's "I can only read text" depends on the status where the photo becomes the
# agent's (a compare-and-set), not on a look before it was stored.
HANDOFF = {"handoff": {}}


async def test_a_photo_sent_as_an_agent_takes_over_is_hers_and_gets_no_bot_answer(
    make_tg: MakeTg, migrated_db_url: str
) -> None:
    tg = await make_tg(plugins=HANDOFF, store_url=migrated_db_url)
    bot, u = tg.bot, tg.fake.updates
    tg.fake.push(u.message(811, "hello"))
    await tg.wait_answers(1)
    conversation = await bot.store.get_conversation("telegram", "811")
    assert conversation is not None
    taken: list[str] = []

    async def take_over(where: str) -> None:
        # Once, just after the bot looked at the conversation for the photo.
        if not taken:
            taken.append(where)
            await bot.agent_replies.send(conversation.id, "Ana here", agent="Ana", take_over=True)

    real_look, real_intake = bot.with_human, bot.store.intake

    async def look_then_take_over(channel: str, key: str) -> bool:
        seen = await real_look(channel, key)
        await take_over("after a look")
        return seen

    async def store_then_take_over(event: InboundMessage, **kw: Any) -> Any:
        result = await real_intake(event, **kw)
        if event.attachments:
            assert result.conversation.status == ConversationStatus.BOT
            await take_over("after storing it")
        return result

    real_submit = bot.submit_or_keep
    submitted = asyncio.Event()

    async def submit(event: InboundMessage, **kw: Any) -> Any:
        receipt = await real_submit(event, **kw)
        submitted.set()  # its reply task is scheduled
        return receipt

    bot.with_human = look_then_take_over  # type: ignore[method-assign]
    bot.store.intake = store_then_take_over  # type: ignore[method-assign]
    bot.submit_or_keep = submit  # type: ignore[method-assign]
    tg.fake.push(u.photo(811, language_code="de"))
    await tg.fake.wait_until(lambda: len(tg.answers(811)) >= 2, 30)
    async with asyncio.timeout(30):  # before the fix, never: the photo was not stored
        await submitted.wait()
    await tg.settle()
    assert taken
    [photo] = [m for m in await bot.store.messages_after("telegram", "811", 0) if m.attachments]
    assert photo.status == MessageStatus.ANSWERED  # the agent's
    assert [a.kind for a in photo.attachments] == ["image"]
    assert tg.answers(811) == ["echo: hello", "Ana here"]  # no "I can only read text"


async def test_a_photo_on_its_way_to_an_agent_who_leaves_gets_the_text_only_answer(
    make_tg: MakeTg, migrated_db_url: str
) -> None:
    tg = await make_tg(plugins=HANDOFF, store_url=migrated_db_url)
    bot, u = tg.bot, tg.fake.updates
    tg.fake.push(u.message(812, "/human", language_code="de"))
    await tg.wait_answers(1)
    conversation = await bot.store.get_conversation("telegram", "812")
    assert conversation is not None
    real = bot.store.finish_inbound
    released: list[int] = []

    async def release_first(finish: InboundFinish, **kw: Any) -> bool:
        # Given back to the bot (another process: the database only) just before the
        # photo would have become the agent's.
        if finish.message.attachments and not released:
            back = await bot.store.change_conversation_status(
                conversation.id, ConversationStatus.BOT,
                only_from=(ConversationStatus.WAITING_HUMAN,),
            )  # fmt: skip
            assert back is not None
            released.append(conversation.id)
        return await real(finish, **kw)

    bot.store.finish_inbound = release_first  # type: ignore[method-assign]
    tg.fake.push(u.photo(812, language_code="de"))
    await tg.fake.wait_until(lambda: texts.UNSUPPORTED["de"] in tg.answers(812), 30)
    await tg.settle()
    assert released
    stored = await bot.store.messages_after("telegram", "812", 0)
    [photo] = [m for m in stored if m.attachments]
    assert photo.status == MessageStatus.ANSWERED  # answered by the bot
    assert (stored[-1].text, stored[-1].language) == (texts.UNSUPPORTED["de"], "de")
    assert len(tg.answers(812)) == 2  # the hand-off's confirmation, then that answer
