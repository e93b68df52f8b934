"""``botkit data forget`` while the bot streams a reply to that person: the reply is lost
(docs/operations.md, "Customers' data"), which is expected, so the running bot says so in
one line, with no error and no traceback, and goes on serving everyone else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit._data_cli import forget_contact
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.errors import ConnectorError


async def _replying(bot: Bot, within: float = 10.0) -> None:
    """Wait until a reply is being streamed (its first words are out)."""
    async with asyncio.timeout(within):
        # (polled: the bot has no event for "first words out")
        while not any(d.text for ds in bot._live.deliveries().values() for d in ds):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class _Wrapping(RecordingConnector):
    """A connector that reports any failure of the stream as its own ConnectorError."""

    async def send_stream(self, stream: ReplyStream) -> None:
        try:
            await super().send_stream(stream)
        except Exception as exc:
            raise ConnectorError(f"could not send: {exc}") from exc


@pytest.mark.parametrize("connector", [RecordingConnector, _Wrapping])
async def test_a_reply_streaming_while_its_person_is_erased_is_dropped_quietly(
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    connector: type[RecordingConnector],
) -> None:
    settings = make_settings(backend={"echo": {"word_delay_seconds": 0.05}})
    caplog.set_level(logging.DEBUG)
    async with Bot(settings) as bot:
        bot.attach_connector(connector(bot))
        receipt = await bot.submit(
            message("one two three four five six seven eight", "k1", conversation="ann", user="ann")
        )
        await _replying(bot)
        caplog.clear()
        # What `botkit data forget test ann` does, from another process's connection.
        summary = await forget_contact(settings.store, "test", "ann")
        assert "deleted 1 contact, 1 conversation" in summary
        assert await bot.drain(10.0)

        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert problems == [], [r.getMessage() for r in problems]
        assert not [r for r in caplog.records if r.exc_info]
        erased = [r for r in caplog.records if "was erased" in r.getMessage()]
        assert [(r.levelno, r.getMessage()) for r in erased] == [
            (
                logging.INFO,
                f"conversation {receipt.conversation_id} was erased while its reply was "
                "being written; the reply is dropped",
            )
        ]
        assert recorder(bot).replies == []  # nothing was stored, nothing is final
        # Counted as what it was, not as a failure an operator's alert would page for.
        replies = bot.metrics.registry.get_sample_value
        assert replies("botkit_replies_total", {"channel": "test", "outcome": "erased"}) == 1
        assert replies("botkit_replies_total", {"channel": "test", "outcome": "error"}) == 0

        # The bot goes on serving: another person, and Ann again, as a new contact.
        await bot.submit(message("hello", "k2", conversation="bob", user="bob"))
        await bot.submit(message("me again", "k3", conversation="ann", user="ann"))
        replies = await recorder(bot).wait_for(2)
        assert sorted(r.text for r in replies) == ["echo: hello", "echo: me again"]
        assert all(r.seq is not None for r in replies)


async def test_a_message_waiting_behind_the_reply_is_dropped_with_it(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """Its turn comes after the erasure: its conversation is read again, and is gone."""
    settings = make_settings(backend={"echo": {"word_delay_seconds": 0.05}})
    caplog.set_level(logging.DEBUG)
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        first = await bot.submit(
            message("one two three four five", "k1", conversation="ann", user="ann")
        )
        await bot.submit(message("and then", "k2", conversation="ann", user="ann"))
        await _replying(bot)
        caplog.clear()
        await forget_contact(settings.store, "test", "ann")
        assert await bot.drain(10.0)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        erased = [r for r in caplog.records if "was erased" in r.getMessage()]
        assert [r.levelno for r in erased] == [logging.INFO, logging.INFO]
        assert all(f"conversation {first.conversation_id} " in r.getMessage() for r in erased)
        assert recorder(bot).replies == []
