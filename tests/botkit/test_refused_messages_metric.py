"""Messages the core refuses are counted: ``botkit_messages_total{outcome="refused"}``
(a database outage with nowhere to keep them, ids no database can hold, a bot not
accepting messages), exported at 0 from the start; a message the outage spool keeps
is not refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder
from prometheus_client.parser import text_string_to_metric_families
from sqlite_lock import write_locked

from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import DatabaseUnavailableError, MessageRejectedError, NotAcceptingError


def _messages(bot: Bot, outcome: str) -> float | None:
    for family in text_string_to_metric_families(bot.metrics.render().decode()):
        for s in family.samples:
            if s.name == "botkit_messages_total" and s.labels == {
                "channel": "test",
                "outcome": outcome,
            }:
                return s.value
    return None


async def test_messages_refused_during_a_database_outage_are_counted(
    make_settings: Callable[..., Settings], core_db_url: str
) -> None:
    settings = make_settings(store={"sqlite_busy_timeout_ms": 100, "outage_spool_dir": ""})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        assert _messages(bot, "refused") == 0  # there before the first refusal
        with write_locked(core_db_url):
            for i in range(2):
                with pytest.raises(DatabaseUnavailableError):
                    await bot.submit(message("hello", f"k{i}"))
            with pytest.raises(DatabaseUnavailableError):  # the spool is off
                await bot.submit_or_keep(message("hello", "k2"))
        assert (_messages(bot, "refused"), _messages(bot, "stored")) == (3, 0)
        await bot.submit(message("hello", "k0"))  # the retry is taken
        await recorder(bot).wait_for(1)
        assert (_messages(bot, "refused"), _messages(bot, "stored")) == (3, 1)


async def test_unstorable_ids_and_a_bot_not_accepting_count_as_refused(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with pytest.raises(MessageRejectedError):
            await bot.submit(message("hello", "k\x00"))
        bot._accepting = False  # as while it stops
        with pytest.raises(NotAcceptingError):
            await bot.submit(message("hello", "k1"))
        with pytest.raises(NotAcceptingError):
            await bot.submit_or_keep(message("hello", "k2"))
        assert _messages(bot, "refused") == 3
        bot._accepting = True


async def test_a_message_the_spool_keeps_is_not_refused_nor_counted_twice(
    make_settings: Callable[..., Settings], core_db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        store={"sqlite_busy_timeout_ms": 100, "outage_spool_dir": str(tmp_path / "spool")}
    )
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with write_locked(core_db_url):
            assert await bot.submit_or_keep(message("kept", "k1")) is None
        (reply,) = await recorder(bot).wait_for(1)  # stored and answered once it is back
        assert reply.text.endswith("kept")
        assert (_messages(bot, "refused"), _messages(bot, "stored")) == (0, 1)
