"""Fixtures: the fake Bot API server and a factory of started bots using it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from tg_helpers import TOKEN, MakeTg, TgHarness, tg_settings

from botkit.backends.protocol import GenerationBackend
from botkit.bot import Bot
from botkit.testing.fake_telegram_drafts import FakeTelegramDrafts
from connectors.telegram import TelegramConnector


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramDrafts]:
    """The fake Bot API server, with drafts (``sendMessageDraft``) like Telegram now."""
    async with FakeTelegramDrafts(TOKEN) as api:
        yield api


@pytest.fixture
async def make_tg(tmp_path: Path, fake: FakeTelegramDrafts) -> AsyncIterator[MakeTg]:
    """Factory: ``await make_tg(telegram={...}, bot={...}, word_delay=0, run=True,
    plugins={...}, store_url=None, backend=None)`` (``backend``: a test's own instead
    of the echo backend).

    Bots made with the same ``db`` name share their database (a restart); ``store_url``
    names another database instead (``migrated_db_url``: SQLite and PostgreSQL).
    """
    async with AsyncExitStack() as stack:

        async def make(
            telegram: dict[str, Any] | None = None,
            *,
            bot: dict[str, Any] | None = None,
            word_delay: float = 0.0,
            run: bool = True,
            db: str = "tg.db",
            plugins: dict[str, Any] | None = None,
            store_url: str | None = None,
            backend: GenerationBackend | None = None,
        ) -> TgHarness:
            settings = tg_settings(tmp_path / db, fake, telegram, bot=bot, word_delay=word_delay,
                                   plugins=plugins, store_url=store_url)  # fmt: skip
            instance = Bot(settings, backend=backend)
            await stack.enter_async_context(instance)
            connector = instance.connectors["telegram"]
            assert isinstance(connector, TelegramConnector)
            harness = TgHarness(instance, connector, fake)
            stack.push_async_callback(harness.stop)
            if run:
                await harness.run()
            return harness

        yield make


@pytest.fixture
async def tg(make_tg: MakeTg) -> TgHarness:
    """A running bot in polling mode with fast limits."""
    return await make_tg()
