"""Fixtures for the core tests: settings on a temporary SQLite file, a started bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from core_helpers import TOKEN, Api, ApiBot, RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.testing.translator import MarkingTranslator


@pytest.fixture
def core_db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def make_settings(core_db_url: str) -> Callable[..., Settings]:
    """Settings on the temporary database with the echo backend; ``**sections`` are
    merged over that (one level deep)."""

    def build(**sections: dict[str, Any]) -> Settings:
        data: dict[str, Any] = {
            "store": {"url": core_db_url},
            "backend": {"kind": "echo"},
        }
        for name, values in sections.items():
            data[name] = {**data.get(name, {}), **values}
        return settings_from_mapping(data, environ={})

    return build


@pytest.fixture
def shared_settings(migrated_db_url: str) -> Callable[..., Settings]:
    """Settings for bots sharing one database (processes of one deployment), on each
    backend (SQLite file, PostgreSQL): ``echo`` is the echo backend's section, the
    other keywords the ``[bot]`` section."""

    def build(**bot: Any) -> Settings:
        data = {
            "store": {"url": migrated_db_url},
            "backend": {"kind": "echo", "echo": bot.pop("echo", {})},
            "bot": bot,
        }
        return settings_from_mapping(data, environ={})

    return build


@pytest.fixture
def agent_settings(migrated_db_url: str) -> Callable[..., Settings]:
    """Settings with the agent API on each database (SQLite file, PostgreSQL); plugin
    options as keywords, and ``language`` the ``[language]`` table."""

    def build(*, language: dict[str, Any] | None = None, **handoff: Any) -> Settings:
        plugin = {"api_listen": "127.0.0.1:0", "api_token": TOKEN, **handoff}
        data = {
            "store": {"url": migrated_db_url},
            "backend": {"kind": "echo"},
            "plugins": {"handoff": plugin},
            "language": language or {},
        }
        return settings_from_mapping(data, environ={})

    return build


@pytest.fixture
async def bot(make_settings: Callable[..., Settings]) -> AsyncIterator[Bot]:
    async with Bot(make_settings()) as started:
        started.attach_connector(RecordingConnector(started))
        yield started


@pytest.fixture
def api_bot(make_settings: Callable[..., Settings]) -> ApiBot:
    """Starts a bot with the hand-off plugin's agent API on a loopback port (plugin
    options as keywords; ``translator`` and a ``[language]`` table for pivot mode)."""

    @asynccontextmanager
    async def started(
        translator: MarkingTranslator | None = None, language: dict[str, Any] | None = None,
        **config: Any,
    ) -> AsyncIterator[Api]:  # fmt: skip
        plugin = {"api_listen": "127.0.0.1:0", "api_token": TOKEN, **config}
        settings = make_settings(plugins={"handoff": plugin}, language=language or {})
        async with Bot(settings, translator=translator) as bot:
            bot.attach_connector(RecordingConnector(bot))
            async with aiohttp.ClientSession() as session:
                yield Api(bot, session)

    return started
