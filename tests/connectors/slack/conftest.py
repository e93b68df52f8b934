"""Fixtures: the REAL bot (echo backend, temporary SQLite) + the Slack connector, talking
to a local fake Slack Web API through the real slack-bolt / slack_sdk code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_helpers import FAST, MakeSlack, SlackHarness, slack_settings

from botkit.backends.protocol import GenerationBackend, Translator
from botkit.bot import Bot
from botkit.testing.fake_slack import FakeSlack
from connectors.slack import SlackConnector


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(users={"U1": {"name": "ann", "locale": "fr-FR"}}) as fake:
        yield fake


@pytest.fixture
async def make_slack(tmp_path: Path, fake_slack: FakeSlack) -> AsyncIterator[MakeSlack]:
    """Factory: ``await make_slack(word_delay=0.0, backend=None, fast=True, **config)``;
    ``db`` names the SQLite file (two bots on one file: a restart); ``translator`` and
    a ``[language]`` table for pivot mode; ``plugins``: their tables."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        count = 0

        async def make(
            word_delay: float = 0.0,
            backend: GenerationBackend | None = None,
            fast: bool = True,
            connect: bool = True,
            db: Path | None = None,
            translator: Translator | None = None,
            language: dict[str, Any] | None = None,
            plugins: dict[str, Any] | None = None,
            **slack: Any,
        ) -> SlackHarness:
            nonlocal count
            count += 1
            config = {**(FAST if fast else {}), **slack}
            db = db or tmp_path / f"slack{count}.db"
            settings = slack_settings(db, fake_slack, config, word_delay, language, plugins)
            bot = Bot(settings, backend=backend, translator=translator)
            await stack.enter_async_context(bot)
            connector = bot.connectors["slack"]
            assert isinstance(connector, SlackConnector)
            if connect:
                await connector.connect()
            return SlackHarness(bot, connector, fake_slack, http)

        yield make


@pytest.fixture
async def slack(make_slack: MakeSlack) -> SlackHarness:
    return await make_slack()
