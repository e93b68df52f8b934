"""Fixtures: the REAL bot (echo backend, temporary SQLite) serving the web app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from web_helpers import MakeWeb, WebHarness, serve, web_settings

from botkit.bot import Bot


@pytest.fixture
async def make_web(tmp_path: Path) -> AsyncIterator[MakeWeb]:
    """Factory: ``await make_web(word_delay=0.0, **web_config)`` -> started harness."""
    async with AsyncExitStack() as stack:
        count = 0

        async def make(word_delay: float = 0.0, **web: Any) -> WebHarness:
            nonlocal count
            count += 1
            return await serve(
                stack, Bot(web_settings(tmp_path / f"web{count}.db", web, word_delay))
            )

        yield make


@pytest.fixture
async def web(make_web: MakeWeb) -> WebHarness:
    """The default harness: relaxed limits, a site secret, instant echo."""
    return await make_web()
