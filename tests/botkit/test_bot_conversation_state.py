"""What the replies before a message changed is what that message sees.

Replies run one at a time per conversation, but a message is stored (and its
conversation read) as soon as it arrives. One stored while earlier replies are still
being written must still see the hand-off, the return to the bot, or the language those
replies set. Also: a closed conversation reopens when the customer writes again, the
rate limit covers the notices, and in pivot mode the notices go out in the
conversation's language.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Direction
from botkit.language.default_texts import RATE_LIMIT_REPLIES, TOO_LONG_REPLIES
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler
from botkit.store import ConversationStatus
from botkit.testing.translator import MarkingTranslator

SPANISH = "Hola, necesito ayuda con mi pedido, por favor. ¿Dónde está mi paquete?"
SLOW = {"kind": "echo", "echo": {"word_delay_seconds": 0.1}}  # a reply takes ~1 s


async def test_a_message_queued_after_a_hand_off_is_left_to_the_human(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(backend=SLOW, plugins={"handoff": {}})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("where is my order 4521, it did not arrive yet", "k0"))
        await asyncio.sleep(0.2)  # that answer is being written...
        await bot.submit(message("/human", "k1"))  # ...when the customer asks for a human
        await bot.submit(message("hello? anyone there?", "k2"))
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
    texts = [r.text for r in recorder(bot).replies]
    assert conversation is not None and conversation.status == ConversationStatus.WAITING_HUMAN
    assert len(texts) == 2 and not any(t.startswith("echo: hello?") for t in texts)


async def test_a_question_sent_with_the_return_command_is_answered(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(plugins={"handoff": {}})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("/human", "k0"))
        assert await bot.drain(30)
        await bot.submit(message("/bot", "k1"))  # one batch: back to the bot, and a question
        await bot.submit(message("what are your opening hours?", "k2"))
        assert await bot.drain(30)
    assert recorder(bot).replies[-1].text == "echo: what are your opening hours?"


async def test_a_queued_short_message_keeps_the_language_the_previous_one_set(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(backend=SLOW)) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("Hello, I need help with my order please, it is late.", "k0"))
        await asyncio.sleep(0.2)  # the English answer is being written...
        await bot.submit(message(SPANISH, "k1"))  # ...the customer switches to Spanish
        await bot.submit(message("gracias", "k2"))  # too short to detect: sticky
        assert await bot.drain(30)
    assert [r.language for r in recorder(bot).replies] == ["en", "es", "es"]


async def test_a_burst_opening_a_conversation_keeps_its_language(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message(SPANISH, "k1"))  # delivered together, e.g. one
        await bot.submit(message("ok gracias", "k2"))  # Telegram getUpdates batch
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
    assert [r.language for r in recorder(bot).replies] == ["es", "es"]
    assert conversation is not None and conversation.language == "es"


async def test_a_closed_conversation_reopens_when_the_customer_writes_again(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(plugins={"handoff": {}})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello", "k1"))
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None
        await bot.store.set_conversation_status(conversation.id, ConversationStatus.CLOSED)
        await bot.submit(message("hi again, I have a new question", "k2"))
        assert await bot.drain(30)
        reopened = await bot.store.get_conversation("test", "c1")
    assert [r.text for r in recorder(bot).replies] == [
        "echo: hello",
        "echo: hi again, I have a new question",
    ]
    assert reopened is not None and reopened.status == ConversationStatus.BOT


class _Bye(Handler):
    """Closes the conversation, slowly: the customer keeps typing meanwhile."""

    def check(self, ctx: Context) -> bool:
        return ctx.text == "/bye"

    async def handle(self, ctx: Context) -> None:
        await asyncio.sleep(0.2)
        await ctx.close_conversation("customer left")
        ctx.set_reply("Goodbye!")


async def test_a_message_queued_behind_the_close_reopens_the_conversation(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        bot.pipeline.add_handler(_Bye(), group=-1)
        await bot.submit(message("/bye", "k1"))
        await bot.submit(message("wait, one more thing: where is my refund?", "k2"))
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
    assert [r.text for r in recorder(bot).replies] == [
        "Goodbye!",
        "echo: wait, one more thing: where is my refund?",
    ]
    assert conversation is not None and conversation.status == ConversationStatus.BOT


async def test_a_human_handled_conversation_is_not_reopened_by_the_customer(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        receipt = await bot.submit(message("hello", "k1"))
        assert await bot.drain(30)
        await bot.store.set_conversation_status(
            receipt.conversation_id, ConversationStatus.WITH_HUMAN
        )
        await bot.submit(message("still there?", "k2"))
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
    assert [r.text for r in recorder(bot).replies] == ["echo: hello"]
    assert conversation is not None and conversation.status == ConversationStatus.WITH_HUMAN


async def test_a_flood_of_over_long_messages_gets_one_notice_not_one_each(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"max_message_chars": 10, "rate_limit": {"messages": 2}})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for i in range(10):
            await bot.submit(message("x" * 50, f"k{i}"))
        assert await bot.drain(30)
    texts = [r.text for r in recorder(bot).replies]
    too_long = settings.bot.too_long_reply.split("(")[0]
    assert len(texts) == 3  # two answered (with the too-long notice), then one slow-down
    assert [t.startswith(too_long) for t in texts] == [True, True, False]
    assert texts[2] == settings.bot.rate_limit.reply


# ------------------------------------------------------------------ pivot-mode notices
async def _pivot_replies(settings: Settings, *texts: str) -> list[tuple[str, str | None]]:
    async with Bot(settings, translator=MarkingTranslator()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for i, text in enumerate(texts):
            await bot.submit(message(text, f"k{i}"))
            assert await bot.drain(30)
        stored = await bot.store.messages_after("test", "c1", 0, 20)
    assert [(r.text, r.language) for r in stored if r.direction == Direction.OUTBOUND] == [
        (r.text, r.language) for r in recorder(bot).replies
    ]
    return [(r.text, r.language) for r in recorder(bot).replies]


# The operator's own notices (in the working language, so pivot mode translates them);
# the built-in ones come in the customer's language already.
CUSTOM_NOTICES = {
    "too_long_reply": "Your message is too long ({length} characters, at most {limit}). "
    "Please make it shorter."
}
CUSTOM_SLOW_DOWN = {"messages": 2, "reply": "You are sending messages faster than I read."}


async def test_pivot_notices_go_out_in_the_conversations_language(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        bot=CUSTOM_NOTICES | {"max_message_chars": 100, "rate_limit": CUSTOM_SLOW_DOWN}
    )
    replies = await _pivot_replies(settings, SPANISH, "¿" + "a" * 200, SPANISH)
    (too_long, too_long_language), (slow_down, slow_down_language) = replies[1:]
    # Translated sentence by sentence (MarkingTranslator writes "es(...)"), numbers kept.
    assert too_long.startswith("es(Your message is too long (201 characters")
    assert slow_down.startswith("es(You are sending messages faster")
    assert too_long_language == slow_down_language == "es"


async def test_pivot_built_in_notices_go_out_in_the_conversations_language(
    make_settings: Callable[..., Settings],
) -> None:
    # The defaults kept: the built-in Spanish texts, not translated again.
    settings = make_settings(bot={"max_message_chars": 100, "rate_limit": {"messages": 2}})
    replies = await _pivot_replies(settings, SPANISH, "¿" + "a" * 200, SPANISH)
    too_long = TOO_LONG_REPLIES["es"].replace("{length}", "201").replace("{limit}", "100")
    assert replies[1:] == [(too_long, "es"), (RATE_LIMIT_REPLIES["es"], "es")]


async def test_a_first_message_notice_goes_out_in_the_channels_language_hint(
    make_settings: Callable[..., Settings],
) -> None:
    # Too long to be read, so nothing is detected and the conversation has no language:
    # the channel's hint for the person (Telegram's language_code, the page's language)
    # is the best guess, not the working language.
    settings = make_settings(bot=CUSTOM_NOTICES | {"max_message_chars": 100})
    async with Bot(settings, translator=MarkingTranslator()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("¿" + "a" * 200, "k0", language_hint="es"))
        assert await bot.drain(30)
    ((text, language),) = [(r.text, r.language) for r in recorder(bot).replies]
    assert text.startswith("es(Your message is too long (201 characters") and language == "es"


async def test_pivot_notices_stay_in_the_working_language_for_an_english_conversation(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"max_message_chars": 100})
    replies = await _pivot_replies(settings, "Hello, I need help with my order please.", "a" * 200)
    assert replies[1][0].startswith("Your message is too long (200 characters")
