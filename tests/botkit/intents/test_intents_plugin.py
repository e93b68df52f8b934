"""The intents plugin through the real bot (echo backend, SQLite): each action, the
customer's language, and what must not match."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from core_helpers import closed_on_saturday
from intents_helpers import (
    HOURS_EN,
    HOURS_ES,
    REFUND_POLICY,
    SHOP,
    IntentsBot,
    RecordingEcho,
    make_ctx,
    status,
)

from botkit.events import Button, HandoffRequested, SystemEvent
from botkit.handoff.texts import HANDOFF_REPLIES
from botkit.intents import INTENTS_GROUP, STATE_KEY, IntentsConfig, IntentsHandler
from botkit.plugins import available_plugins
from botkit.store import ConversationStatus
from botkit.testing.translator import MarkingTranslator

# In-process langdetect: deterministic, no worker processes.
DETECT = {"detector": {"kind": "langdetect", "processes": 0}}


def test_found_without_installed_entry_point() -> None:
    assert available_plugins()["intents"] == "botkit.intents:IntentsPlugin"
    assert -100 < INTENTS_GROUP < 0  # after hand-off and /lang, before default handlers


async def test_paraphrase_gets_the_fixed_reply_and_others_the_model(
    intents_bot: IntentsBot,
) -> None:
    async with intents_bot() as say:
        assert say.bot.plugins.active == ["intents"]
        reply = await say("hi, when are you opening today?")
        assert reply is not None and reply.text == HOURS_EN
        assert reply.metadata["intent"] == "opening_hours"
        assert reply.buttons == (Button("Our address", "address"),)
        assert await status(say.bot) == ConversationStatus.BOT
        # Typos and other words: still the intent.
        assert await say.text("wat are ur openng hours") == HOURS_EN

        unrelated = "The zipper of the jacket I bought last week broke."
        assert await say.text(unrelated) == f"echo: {unrelated}"
        # A long message that mentions the intent's words is a question for the model.
        long = (
            "I ordered a sofa three weeks ago and the delivery company says it cannot "
            "come before the end of the month. I need it earlier because we are moving. "
            "What are your opening hours on Saturday? Can I pick it up myself at the shop?"
        )
        assert len(long) > 200  # max_chars' default
        assert await say.text(long) == f"echo: {long}"


async def test_keywords_match_whole_words_only(intents_bot: IntentsBot) -> None:
    async with intents_bot() as say:
        # invoice_copy has keywords only: no similarity to fall back on.
        for text in ("Can I get a copy of my INVOICE, please?", "invoice", "Invoice!!"):
            assert await say.text(text) == SHOP["intent"][4]["reply"]["en"], text
        # Accents and case do not matter, punctuation separates words.
        assert (
            await say.text("¿Cuál es la DIRECCION de factura?")
            == (SHOP["intent"][4]["reply"]["en"])
        )
        for text in ("invoices", "reinvoice it", "invoice-less", "invoiced yesterday"):
            if text == "invoice-less":  # "-" separates words: "invoice" is a whole word
                assert await say.text(text) == SHOP["intent"][4]["reply"]["en"]
                continue
            assert await say.text(text) == f"echo: {text}", text


async def test_spanish_customer_gets_the_spanish_reply(intents_bot: IntentsBot) -> None:
    async with intents_bot(language=DETECT) as say:
        reply = await say("Hola, ¿a qué hora abren ustedes los sábados?")
        assert reply is not None and reply.text == HOURS_ES
        assert reply.language == "es"
        assert reply.buttons == (Button("Nuestra dirección", "address"),)


async def test_pivot_mode_translates_the_working_language_text(intents_bot: IntentsBot) -> None:
    translator = MarkingTranslator()
    async with intents_bot(language=DETECT, translator=translator) as say:
        reply = await say("Guten Tag, wann haben Sie am Samstag geöffnet?")
        assert reply is not None and reply.language == "de"
        assert reply.text == f"de({HOURS_EN})"
        # Spanish is in the table: not translated.
        assert await say.text("Hola, ¿a qué hora abren ustedes los sábados?", "c2") == HOURS_ES
        assert not [t for c in translator.calls if c.target == "es" for t in c.texts if "open" in t]


@pytest.mark.parametrize("mode", ["native", "off"])
async def test_other_modes_fall_back_to_the_working_language(
    intents_bot: IntentsBot, mode: str
) -> None:
    async with intents_bot(language={"mode": mode, **DETECT}) as say:
        reply = await say("Guten Tag, wann haben Sie am Samstag geöffnet?")
        assert reply is not None and reply.text == HOURS_EN
        assert reply.language == "en"  # labelled with the language it is in


async def test_handoff_action(intents_bot: IntentsBot) -> None:
    seen: list[SystemEvent] = []

    async def record(event: SystemEvent) -> None:
        seen.append(event)

    async with intents_bot() as say:
        say.bot.events.subscribe(record)
        reply = await say("hello, can I speak with someone from sales?")
        assert reply is not None and reply.text == HANDOFF_REPLIES["en"]
        assert reply.metadata["intent"] == "talk_to_sales"
        assert await status(say.bot) == ConversationStatus.WAITING_HUMAN
        (event,) = [e for e in seen if isinstance(e, HandoffRequested)]
        assert event.reason == "intent talk_to_sales" and event.conversation_key == "c1"
        # Now with a human: nothing answers, not even an intent.
        assert await say("What are your opening hours?") is None


async def test_handoff_action_goes_through_the_handoff_plugin(intents_bot: IntentsBot) -> None:
    # Its texts and /bot hint, and its office hours, as for /human.
    replies = {"en": "Our sales team will write to you here."}
    async with intents_bot(handoff={"replies": replies}) as say:
        reply = await say.text("hello, can I speak with someone from sales?")
        assert reply == "Our sales team will write to you here. Send /bot to talk to the bot again."


async def test_handoff_action_follows_the_office_hours(
    intents_bot: IntentsBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    hours = closed_on_saturday(monkeypatch)
    async with intents_bot(handoff={"hours": hours}) as say:
        reply = await say("hello, can I speak with someone from sales?", "c2")
        assert reply is not None and reply.metadata["intent"] == "talk_to_sales"
        assert reply.text.startswith("Our team is away right now and back from Monday 09:00")
        assert await status(say.bot, "c2") == ConversationStatus.BOT


async def test_close_action(intents_bot: IntentsBot) -> None:
    async with intents_bot() as say:
        assert await say.text("thanks a lot, goodbye") == "Goodbye, have a nice day!"
        assert await status(say.bot) == ConversationStatus.CLOSED


async def test_instruct_action_guides_the_model(intents_bot: IntentsBot) -> None:
    backend = RecordingEcho()
    async with intents_bot(backend=backend) as say:
        reply = await say("I would like a refund")
        assert reply is not None and reply.text == "echo: I would like a refund"
        assert reply.metadata["intent"] == "refund"
        await say("Where do you ship from?")
    guided, plain = backend.requests
    assert guided.messages[0].role == "system"
    assert guided.messages[0].content.endswith(REFUND_POLICY)
    assert REFUND_POLICY not in plain.messages[0].content


async def test_the_match_is_logged_without_the_customer_text(
    intents_bot: IntentsBot, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "my card 4111 1111 1111 1111"
    with caplog.at_level(logging.INFO):
        async with intents_bot() as say:
            await say(f"what are your opening hours? {secret}")
    lines = [r.getMessage() for r in caplog.records if "intent 'opening_hours'" in r.getMessage()]
    assert len(lines) == 1 and "test:" in lines[0] and "reply" in lines[0]
    assert "4111" not in caplog.text


def test_conversations_with_a_human_are_not_matched() -> None:
    # The core's gate already keeps such messages from handlers; the handler checks too.
    handler = IntentsHandler(IntentsConfig.model_validate(SHOP), "en")
    ctx = make_ctx("What are your opening hours?")
    assert handler.check(ctx)
    for blocked in (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN,
                    ConversationStatus.CLOSED):  # fmt: skip
        other = make_ctx("What are your opening hours?")
        other.conversation = replace(other.conversation, status=blocked)
        assert not handler.check(other)
    too_long = make_ctx("What are your opening hours?")
    too_long.too_long = True
    assert not handler.check(too_long)
    assert STATE_KEY not in ctx.state


HOSTILE = [
    "what are your opening hours\x00\x01\x07?",
    "opening\ud800 hours",
    "x" * 4000,
    "what are your opening hours? " * 130,
    "😀😀😀🎉",
    "🕘❓",
    "ما هي ساعات العمل لديكم؟",
    "\u202eopening hours\u202c",
    "你们几点开门？",  # noqa: RUF001
    "\u200b",
    "   ",
]


async def test_hostile_messages(intents_bot: IntentsBot) -> None:
    async with intents_bot() as say:
        for n, text in enumerate(HOSTILE):
            reply = await say(text, f"h{n}")
            # Answered (by someone) and the conversation still the bot's.
            assert reply is not None, repr(text[:20])
            assert await status(say.bot, f"h{n}") == ConversationStatus.BOT
        answers = [r.text for r in say.bot.connectors["test"].replies]  # type: ignore[attr-defined]
    # Control characters are no words; the keyword still matches around them, and
    # bidirectional controls do not hide it.
    assert answers[0] == HOURS_EN
    assert answers[7] == HOURS_EN
    # Oversized messages never match, emoji and unrelated scripts fall through.
    assert HOURS_EN not in answers[2:7] and HOURS_EN not in answers[8:]


async def test_handoff_intents_without_the_handoff_plugin_are_warned_about(
    intents_bot: IntentsBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with intents_bot():  # the shop config has a hand-off intent
        pass
    assert "intents hand conversations over, but [plugins.handoff] is not enabled" in caplog.text
    caplog.clear()
    async with intents_bot(handoff={}):
        pass
    assert "[plugins.handoff] is not enabled" not in caplog.text
