"""A group upgraded to a supergroup: replies follow it to the new chat id, and so does
its conversation (history, language, hand-off state)."""

from __future__ import annotations

import asyncio
from typing import Any

from tg_helpers import MakeTg, TgHarness

from botkit.store import ConversationStatus
from botkit.testing.backends import RecordingEcho

OLD, NEW = -600, -100600


def in_group(update: dict[str, Any], chat_id: int) -> dict[str, Any]:
    update["message"]["chat"] = {"id": chat_id, "type": "group", "title": "Shop"}
    return update


async def moved(tg: TgHarness, within: float = 30.0) -> None:
    """Wait until the group's conversation is the supergroup's (a move started by a
    refused send runs in the background)."""
    for _ in range(int(within / 0.01)):
        if await tg.bot.store.get_conversation("telegram", str(OLD)) is None:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the conversation did not move")


async def test_a_reply_refused_with_chat_migrated_goes_to_the_supergroup(make_tg: MakeTg) -> None:
    tg = await make_tg({"group_replies": "all"})
    tg.fake.upgraded[OLD] = NEW  # upgraded before the reply is sent
    tg.fake.push(in_group(tg.fake.updates.message(OLD, "order 123 is late"), OLD))
    await tg.wait_answers(1, NEW)
    await tg.settle()
    assert tg.answers(NEW) == ["echo: order 123 is late"]
    await moved(tg)  # the refusal told of the upgrade: the conversation followed
    [*_, reply] = await tg.history(NEW)
    assert reply.status == "sent"  # delivered, not stored as failed


async def test_the_migrate_service_message_redirects_later_replies(make_tg: MakeTg) -> None:
    tg = await make_tg({"group_replies": "all"})
    u = tg.fake.updates
    tg.fake.push(
        in_group(u.message(OLD, None, extra={"migrate_to_chat_id": NEW}), OLD),
        in_group(u.message(OLD, "sent just before the upgrade"), OLD),
    )
    await tg.wait_answers(1, NEW)
    await tg.settle()
    assert tg.answers(NEW) == ["echo: sent just before the upgrade"]
    # Straight to the new chat: no refused call to the old one first.
    assert not [c for c in tg.fake.calls_to("sendMessage") if c.status != 200]
    # Delivered after the upgrade, so stored in the supergroup's conversation: not a
    # new one left under the group's id.
    first, *_ = await tg.history(NEW)
    assert first.text == "sent just before the upgrade"
    assert await tg.history(OLD) == []


async def test_a_streamed_reply_in_an_upgraded_group_is_edited_in_the_supergroup(
    make_tg: MakeTg,
) -> None:
    # Review M6: sends followed the upgrade but edits and typing used the old id: the
    # first chunk landed in the supergroup, the edits failed and so did the reply.
    tg = await make_tg({"group_replies": "all"}, word_delay=0.05)
    tg.fake.upgraded[OLD] = NEW
    u = tg.fake.updates
    words = " ".join(f"w{i}" for i in range(40))
    tg.fake.push(
        in_group(u.message(OLD, None, extra={"migrate_to_chat_id": NEW}), OLD),
        in_group(u.message(OLD, words), OLD),
    )
    await tg.wait_answers(1, NEW)
    await tg.settle()
    assert tg.answers(NEW) == [f"echo: {words}"]
    [*_, reply] = await tg.history(NEW)
    assert reply.status == "sent"
    assert tg.fake.calls_to("editMessageText", NEW)  # streamed by edits, there
    for method in ("sendMessage", "editMessageText", "sendChatAction"):
        assert tg.fake.calls_to(method, OLD, ok=False) == [], method


async def test_the_conversation_continues_in_the_supergroup(make_tg: MakeTg) -> None:
    backend = RecordingEcho()
    tg = await make_tg({"group_replies": "all"}, backend=backend)
    u = tg.fake.updates
    tg.fake.push(in_group(u.message(OLD, "my order 123 is late"), OLD))
    await tg.wait_answers(1, OLD)
    tg.fake.push(in_group(u.message(OLD, "/lang es"), OLD))
    await tg.wait_answers(2, OLD)
    await tg.settle()
    before = await tg.bot.store.get_conversation("telegram", str(OLD))
    assert before is not None and before.language == "es"

    # The upgrade: Telegram's two service messages, one in each chat, then the
    # customer writes in the supergroup.
    tg.fake.upgraded[OLD] = NEW
    tg.fake.push(
        in_group(u.message(OLD, None, extra={"migrate_to_chat_id": NEW}), OLD),
        u.message(NEW, None, extra={"migrate_from_chat_id": OLD}),
        u.message(NEW, "any news?"),
    )
    await tg.wait_answers(1, NEW)
    await tg.settle()

    after = await tg.bot.store.get_conversation("telegram", str(NEW))
    assert after is not None
    assert (after.id, after.language) == (before.id, "es")  # the /lang choice too
    assert await tg.bot.store.get_conversation("telegram", str(OLD)) is None
    # The model was shown the group's history with the new message.
    shown = [m.content for m in backend.requests[-1].messages if m.role != "system"]
    assert shown[0] == "my order 123 is late"
    assert shown[-1] == "any news?"
    texts = [h.text for h in await tg.history(NEW)]
    assert texts[0] == "my order 123 is late" and "any news?" in texts


async def test_an_agent_keeps_the_conversation_across_the_upgrade(make_tg: MakeTg) -> None:
    tg = await make_tg({"group_replies": "all"})
    u = tg.fake.updates
    tg.fake.push(in_group(u.message(OLD, "I need a person"), OLD))
    await tg.wait_answers(1, OLD)
    await tg.settle()
    conversation = await tg.bot.store.get_conversation("telegram", str(OLD))
    assert conversation is not None
    await tg.bot.store.set_conversation_status(conversation.id, ConversationStatus.WITH_HUMAN)
    tg.fake.push(u.message(NEW, None, extra={"migrate_from_chat_id": OLD}))
    await moved(tg)
    assert await tg.bot.with_human("telegram", str(NEW))
    update = u.message(NEW, "hello? anyone")
    tg.fake.push(update)
    await tg.fake.wait_until(lambda: tg.fake.confirmed > update["update_id"])  # stored
    await tg.settle()
    assert (await tg.history(NEW))[-1].text == "hello? anyone"
    assert tg.answers(NEW) == []  # the agent's to answer, not the bot's
