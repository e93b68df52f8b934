"""Telegram trims a message's text: the fake does the same, and the connector does not
spend an edit (and a flood slot) on a change Telegram would refuse as "not modified"."""

from __future__ import annotations

import pytest
from telegram import Bot
from telegram.error import BadRequest
from tg_helpers import TOKEN

from botkit.testing.fake_telegram import FakeTelegram
from connectors.telegram.config import FloodLimits, RetryPolicy
from connectors.telegram.flood import FloodControl
from connectors.telegram.sender import Sender, Target
from connectors.telegram.stream import ReplyWriter


async def test_fake_trims_texts_and_refuses_whitespace_only_edits(fake: FakeTelegram) -> None:
    async with Bot(TOKEN, base_url=fake.base_url) as bot:
        sent = await bot.send_message(42, "  Hello \n")
        assert sent.text == "Hello"
        for same in ("Hello \n", "\tHello", "Hello"):
            with pytest.raises(BadRequest, match="not modified"):
                await bot.edit_message_text(same, chat_id=42, message_id=sent.message_id)
        await bot.edit_message_text(" Hello!\n\n", chat_id=42, message_id=sent.message_id)
    [message] = fake.messages(42)
    assert [text for _, text in message.versions] == ["Hello", "Hello!"]


async def test_writer_skips_an_edit_that_changes_only_surrounding_whitespace(
    fake: FakeTelegram,
) -> None:
    async with Bot(TOKEN, base_url=fake.base_url) as bot:
        flood = FloodControl(FloodLimits(per_chat_interval_s=0.0))
        writer = ReplyWriter(Sender(bot, flood, RetryPolicy(), str), Target(42), limit=20)
        await writer.show("Hello")
        assert not writer.changes("Hello \n\n") and not writer.changes("  Hello")
        await writer.show("Hello \n\n")
        await writer.show(" Hello ")
        assert not fake.calls_to("editMessageText", ok=False)  # not even a refused one
        assert writer.changes("Hello, world")
        await writer.show("Hello, world and more ")  # 22 units: a second message
        await writer.show("Hello, world and more")
    assert [m.text for m in fake.messages(42)] == ["Hello, world and", "more"]
    assert len(fake.calls_to("editMessageText", ok=False)) == 1
