"""System events: conversation started, handoff and close, published to subscribers."""

from __future__ import annotations

from collections.abc import Callable

from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import ConversationClosed, ConversationStarted, HandoffRequested, SystemEvent
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler
from botkit.store import ConversationStatus


class _Commands(Handler):
    """ "/human" hands off, "/bye" closes, both with a short confirmation."""

    def check(self, ctx: Context) -> bool:
        return ctx.text in ("/human", "/bye")

    async def handle(self, ctx: Context) -> None:
        if ctx.text == "/human":
            await ctx.hand_off("customer asked")
            ctx.set_reply("A colleague will take over.")
        else:
            await ctx.close_conversation("customer left")
            ctx.set_reply("Goodbye!")


async def test_events_are_published_and_a_failing_subscriber_is_isolated(
    make_settings: Callable[..., Settings],
) -> None:
    seen: list[SystemEvent] = []

    async def broken(event: SystemEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def record(event: SystemEvent) -> None:
        seen.append(event)

    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        bot.events.subscribe(broken, owner="broken-plugin")
        bot.events.subscribe(record)
        bot.pipeline.add_handler(_Commands(), group=-1)

        await bot.submit(message("hello", "k1"))
        await bot.submit(message("/human", "k2"))
        await bot.drain(30)
        # The conversation now waits for a human: the bot no longer answers it.
        await bot.submit(message("are you there?", "k3"))
        await bot.drain(30)
        assert [r.text for r in recorder(bot).replies] == [
            "echo: hello",
            "A colleague will take over.",
        ]
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None
        assert conversation.status == ConversationStatus.WAITING_HUMAN

        await bot.submit(message("/bye", "k4", conversation="c2"))
        await bot.drain(30)

    kinds = [(type(e), e.conversation_key) for e in seen]
    assert kinds == [
        (ConversationStarted, "c1"),
        (HandoffRequested, "c1"),
        (ConversationStarted, "c2"),
        (ConversationClosed, "c2"),
    ]
    assert isinstance(seen[1], HandoffRequested) and seen[1].reason == "customer asked"


async def test_a_closed_conversation_that_a_message_reopens_starts_again(
    migrated_db_url: str, make_settings: Callable[..., Settings]
) -> None:
    # A plugin that opens a ticket per conversation saw Closed, then traffic with no
    # Started. (SQLite and PostgreSQL: reopening is judged from the stored timestamp.)
    seen: list[SystemEvent] = []

    async def record(event: SystemEvent) -> None:
        seen.append(event)

    async with Bot(make_settings(store={"url": migrated_db_url})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        bot.events.subscribe(record)
        bot.pipeline.add_handler(_Commands(), group=-1)
        for i, text in enumerate(["hello", "/bye", "back again", "and more"]):
            await bot.submit(message(text, f"k{i}"))
            assert await bot.drain(30)

    assert [(type(e).__name__, getattr(e, "reopened", None)) for e in seen] == [
        ("ConversationStarted", False),
        ("ConversationClosed", None),
        ("ConversationStarted", True),
    ]
