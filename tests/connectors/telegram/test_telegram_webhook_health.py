"""Webhook mode finds a revoked token by itself (getMe once a minute; no send needed),
and a connector connected again in the same process serves again (real
python-telegram-bot against the fake Bot API server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from tg_helpers import TOKEN, tg_settings, webhook_section

from botkit.bot import Bot
from botkit.testing.fake_telegram_drafts import FakeTelegramDrafts
from connectors.telegram import TelegramConnector, polling


async def _until(check: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until ``check()`` is true; ``TimeoutError`` after ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError


async def test_an_idle_webhook_bot_finds_a_revoked_token(
    tmp_path: Path,
    fake: FakeTelegramDrafts,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(polling, "TOKEN_RECHECK_S", 0.05)
    caplog.set_level(logging.INFO)
    settings = tg_settings(tmp_path / "idle.db", fake, webhook_section())
    async with Bot(settings) as bot:
        task = asyncio.create_task(bot.run())
        await fake.wait_until(lambda: bool(fake.calls_to("setWebhook")), 30)
        tg = bot.connectors["telegram"]
        assert isinstance(tg, TelegramConnector) and tg.health.up
        fake.token = "999:revoked-in-botfather"  # no update, no send: only the check
        await _until(lambda: not tg.health.up)
        assert "getMe refused" in (tg.health.reason or "")
        assert 'botkit_channel_up{channel="telegram"} 0.0' in bot.metrics.render().decode()
        fake.token = TOKEN
        await _until(lambda: tg.health.up)
        assert not task.done()
        bot.stop()
        await asyncio.wait_for(task, 30)


async def test_connected_again_it_serves_again(tmp_path: Path, fake: FakeTelegramDrafts) -> None:
    async with Bot(tg_settings(tmp_path / "again.db", fake, webhook_section())) as bot:
        tg = bot.connectors["telegram"]
        assert isinstance(tg, TelegramConnector)
        await tg.connect()
        tg.health.down("telegram: the bot token was rejected (a refused send)")
        await tg.disconnect()
        await tg.connect()  # getMe passed: the token is accepted again
        try:
            assert tg.health.up
        finally:
            await tg.disconnect()
