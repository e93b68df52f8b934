"""The bot's own limits in conversations a human has (or waits for). The rate limit
protects the bot's answering, and "too long" is the bot's answer: neither answers nor
drops what is the agent's, and the return command always works. The real bot (echo
backend, SQLite), with the plugin."""

from __future__ import annotations

from collections.abc import Callable

from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.handoff import texts
from botkit.store import ConversationStatus

BACK = texts.RETURN_REPLIES["en"]


async def _status(bot: Bot) -> str:
    conversation = await bot.store.get_conversation("test", "c1")
    assert conversation is not None
    return conversation.status


async def test_the_rate_limit_leaves_an_agents_conversation_alone(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"rate_limit": {"messages": 3}}, plugins={"handoff": {}})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("/human", "k0"))
        assert await bot.drain(30)
        answered = len(recorder(bot).replies)
        for i in range(8):  # far past the limit, quickly
            await bot.submit(message(f"more detail {i}", f"m{i}"))
        assert await bot.drain(30)
        # Nothing posted into the agent's conversation, everything stored for them.
        assert len(recorder(bot).replies) == answered
        stored = await bot.store.messages_after("test", "c1", 0, 50)
        assert [m.text for m in stored if m.text.startswith("more detail")] == [
            f"more detail {i}" for i in range(8)
        ]
        # The return command works at once, and says so.
        await bot.submit(message("/bot", "back"))
        assert await bot.drain(30)
        assert [r.text for r in recorder(bot).replies[answered:]] == [BACK]
        assert await _status(bot) == ConversationStatus.BOT
        # With the bot again, the limit protects it as before.
        for i in range(5):
            await bot.submit(message(f"question {i}", f"q{i}"))
        assert await bot.drain(30)
        replies = [r.text for r in recorder(bot).replies[answered + 1 :]]
        # Three a window: /human took one, two are answered, then one notice. The
        # messages the agent left unanswered reach the model with the next one, as one
        # customer turn (botkit.pipeline.turns): the echo repeats them all.
        earlier = "\n\n".join(f"more detail {i}" for i in range(8))
        assert replies == [
            f"echo: {earlier}\n\nquestion 0",
            "echo: question 1",
            settings.bot.rate_limit.reply,
        ]


async def test_an_over_long_message_to_an_agent_is_kept_for_them_not_answered(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"max_message_chars": 50}, plugins={"handoff": {}})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("/human", "k1"))
        assert await bot.drain(30)
        answered = len(recorder(bot).replies)
        await bot.submit(message("x" * 51, "k2"))
        assert await bot.drain(30)
        assert len(recorder(bot).replies) == answered  # nothing from the bot
        assert await _status(bot) == ConversationStatus.WAITING_HUMAN
        stored = await bot.store.messages_after("test", "c1", 0, 20)
        # Still there for the agent to read (out of the model's history).
        assert stored[-1].text == "x" * 51 and stored[-1].status == "rejected"
        # With the bot, the same message gets the bot's notice.
        await bot.submit(message("/bot", "k3"))
        await bot.submit(message("x" * 51, "k4"))
        assert await bot.drain(30)
        replies = [r.text for r in recorder(bot).replies[answered:]]
        assert replies[0] == BACK
        assert replies[1].startswith("Your message is too long")
