"""Telegram while the database cannot store a message (its SQLite file locked by another
program beyond the busy timeout): a webhook update is acknowledged and kept on disk
(Telegram gives a webhook's update up after some failed tries), a polled one confirmed
once kept; both are stored and answered once the file is free, through the real
python-telegram-bot talking to the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlite_lock import write_locked
from tg_helpers import TgHarness, post_update, tg_settings, webhook_section

from botkit.bot import Bot
from botkit.testing.fake_telegram_drafts import FakeTelegramDrafts
from connectors.telegram import TelegramConnector

BUSY_MS = 100
WEBHOOK = webhook_section()

MakeTg = Callable[[dict[str, Any]], Awaitable[TgHarness]]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tg.db"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def make(db: Path, spool_dir: Path, fake: FakeTelegramDrafts) -> AsyncIterator[MakeTg]:
    async with AsyncExitStack() as stack:

        async def started(telegram: dict[str, Any]) -> TgHarness:
            settings = tg_settings(db, fake, telegram)
            store = settings.store.model_copy(
                update={"sqlite_busy_timeout_ms": BUSY_MS, "outage_spool_dir": str(spool_dir)}
            )
            bot = Bot(settings.model_copy(update={"store": store}))
            await stack.enter_async_context(bot)
            connector = bot.connectors["telegram"]
            assert isinstance(connector, TelegramConnector)
            harness = TgHarness(bot, connector, fake)
            stack.push_async_callback(harness.stop)
            await harness.run()
            return harness

        yield started


def _kept(spool_dir: Path) -> int:
    return len(list(spool_dir.glob("*.json"))) if spool_dir.is_dir() else 0


async def test_a_webhook_update_in_an_outage_is_acknowledged_kept_and_answered_after_it(
    make: MakeTg, db: Path, spool_dir: Path
) -> None:
    tg = await make(WEBHOOK)
    update = tg.fake.updates.message(301, "where is my parcel?")
    with write_locked(db):
        assert await post_update(tg, update) == 200  # not 503: Telegram would give up on it
        assert await post_update(tg, update) == 200  # a retry Telegram sent anyway
        assert _kept(spool_dir) == 2
        assert tg.answers(301) == []
    await tg.wait_answers(1, 301)
    await tg.settle()
    assert tg.answers(301) == ["echo: where is my parcel?"]
    assert [h.text for h in await tg.history(301)] == [
        "where is my parcel?", "echo: where is my parcel?"
    ]  # fmt: skip
    assert _kept(spool_dir) == 0


async def test_a_polled_update_in_an_outage_is_confirmed_once_kept_and_answered_after_it(
    make: MakeTg, db: Path, spool_dir: Path
) -> None:
    tg = await make({})
    with write_locked(db):
        update = tg.fake.updates.message(302, "hello?")
        tg.fake.push(update)
        # Confirmed (getUpdates with a higher offset) though nothing could be stored.
        await tg.fake.wait_until(lambda: tg.fake.confirmed > update["update_id"], 30)
        assert _kept(spool_dir) == 1
    await tg.wait_answers(1, 302)
    await tg.settle()
    assert tg.answers(302) == ["echo: hello?"]
    assert _kept(spool_dir) == 0
