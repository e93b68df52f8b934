"""A human agent's message reaches the Telegram chat (real bot and connector, fake
Bot API), and a chat the bot can no longer write to leaves it stored as failed."""

from __future__ import annotations

import pytest
from tg_helpers import MakeTg, TgHarness

from botkit.agent_replies import AgentReplyError
from botkit.store.records import ConversationRecord


async def _conversation_after(tg: TgHarness, chat: int, text: str) -> ConversationRecord:
    """The chat's conversation once the bot has answered ``text`` in it."""
    tg.fake.push(tg.fake.updates.message(chat, text))
    await tg.wait_answers(1, chat)
    await tg.settle()
    conversation = await tg.bot.store.get_conversation("telegram", str(chat))
    assert conversation is not None
    return conversation


async def test_agent_message_is_sent_to_the_chat(make_tg: MakeTg) -> None:
    tg = await make_tg()
    conversation = await _conversation_after(tg, 701, "Where is my order?")

    stored = await tg.bot.agent_replies.send(
        conversation.id, "Ana here, checking now.", agent="Ana", take_over=True
    )
    await tg.wait_answers(2, 701)
    assert tg.answers(701)[-1] == "Ana here, checking now."
    history = await tg.history(701)
    assert (history[-1].seq, history[-1].agent) == (stored.seq, "Ana")


async def test_a_blocked_chat_leaves_the_message_stored_as_failed(make_tg: MakeTg) -> None:
    tg = await make_tg()
    conversation = await _conversation_after(tg, 702, "hello")
    tg.fake.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(AgentReplyError) as err:
        await tg.bot.agent_replies.send(conversation.id, "Are you still there?", take_over=True)
    assert err.value.kind == "failed" and "blocked" in str(err.value)
    last = (await tg.history(702))[-1]
    assert (last.text, last.status, last.agent) == ("Are you still there?", "failed", "")
