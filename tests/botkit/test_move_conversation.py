"""``Bot.move_conversation``: a conversation whose chat got a new id continues under it
with its history (what the model is shown), language and hand-off state."""

from __future__ import annotations

from collections.abc import Callable

from core_helpers import RecordingConnector, message

from botkit.bot import Bot
from botkit.channel import CoreHandle
from botkit.config import Settings
from botkit.store import ConversationStatus
from botkit.testing.backends import RecordingEcho


async def test_the_next_message_under_the_new_key_continues_the_conversation(
    make_settings: Callable[..., Settings],
) -> None:
    backend = RecordingEcho()
    async with Bot(make_settings(), backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        assert isinstance(bot, CoreHandle)
        first = await bot.submit(message("my order 123 is late", "k1", conversation="old"))
        assert await bot.drain(30)
        await bot.store.set_conversation_language(first.conversation_id, "es")

        assert await bot.move_conversation("test", "old", "new") is True
        assert await bot.move_conversation("test", "old", "new") is False  # once

        again = await bot.submit(message("any news?", "k2", conversation="new"))
        assert await bot.drain(30)
        assert (again.conversation_id, again.seq) == (first.conversation_id, 3)
        shown = [m.content for m in backend.requests[-1].messages if m.role != "system"]
        assert shown[0] == "my order 123 is late"  # the old chat's history reached it
        assert shown[-1] == "any news?"
        conversation = await bot.store.get_conversation("test", "new")
        assert conversation is not None and conversation.language == "es"
        assert await bot.last_seq("test", "old") == 0
        assert [h.text for h in await bot.history("test", "new")][:2] == [
            "my order 123 is late",
            "echo: my order 123 is late",
        ]


async def test_an_agent_keeps_the_conversation_it_holds(bot: Bot) -> None:
    receipt = await bot.submit(message("I want a person", "k1", conversation="old"))
    assert await bot.drain(30)
    await bot.store.set_conversation_status(receipt.conversation_id, ConversationStatus.WITH_HUMAN)
    assert await bot.move_conversation("test", "old", "new") is True
    assert await bot.with_human("test", "new")
    assert not await bot.with_human("test", "old")


async def test_a_conversation_under_the_new_key_already_is_left_alone(bot: Bot) -> None:
    await bot.submit(message("old chat", "k1", conversation="old"))
    await bot.submit(message("new chat", "k2", conversation="new"))
    assert await bot.drain(30)
    assert await bot.move_conversation("test", "old", "new") is False
    old, new = await bot.history("test", "old"), await bot.history("test", "new")
    assert (old[0].text, new[0].text) == ("old chat", "new chat")
