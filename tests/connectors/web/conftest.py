"""Fixtures: the REAL bot (echo backend, temporary SQLite) serving the web app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from web_helpers import MakeWeb, WebHarness, web_settings

from botkit.bot import Bot
from connectors.web import WebConnector


@pytest.fixture
async def make_web(tmp_path: Path) -> AsyncIterator[MakeWeb]:
    """Factory: ``await make_web(word_delay=0.0, **web_config)`` -> started harness."""
    async with AsyncExitStack() as stack:
        count = 0

        async def make(word_delay: float = 0.0, **web: Any) -> WebHarness:
            nonlocal count
            count += 1
            bot = Bot(web_settings(tmp_path / f"web{count}.db", web, word_delay))
            await stack.enter_async_context(bot)
            connector = bot.connectors["web"]
            assert isinstance(connector, WebConnector)
            client = TestClient(TestServer(connector.make_app()))
            await client.start_server()
            stack.push_async_callback(client.close)
            return WebHarness(bot, connector, client)

        yield make


@pytest.fixture
async def web(make_web: MakeWeb) -> WebHarness:
    """The default harness: relaxed limits, a site secret, instant echo."""
    return await make_web()
