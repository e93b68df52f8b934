"""A Telegram token revoked while the bot runs takes the Telegram channel down, not the
process: the web widget on the same bot keeps answering, ``botkit_channel_up`` says 0,
one ERROR tells the operator what to do, and the channel serves again once the Bot API
takes the token (real python-telegram-bot against the fake Bot API server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tg_helpers import SECRET, TOKEN, post_update, tg_settings, webhook_section

from botkit.bot import Bot
from botkit.config import settings_from_mapping
from botkit.log_context import RECORD_ATTRIBUTE, MessageContextFilter
from botkit.testing.backends import RecordingEcho
from botkit.testing.fake_telegram_drafts import FakeTelegramDrafts
from connectors.telegram import TelegramConnector, polling
from connectors.web import WebConnector

ORIGIN = "https://shop.example"
CHAT = 555


async def _until(check: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until ``check()`` is true; ``TimeoutError`` after ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError


def _settings(db: Path, fake: FakeTelegramDrafts, telegram: dict[str, Any] | None = None) -> Any:
    """Telegram (polling) and the web widget on one bot, metrics on a free port."""
    base = tg_settings(db, fake, telegram).model_dump(mode="python")
    tg = base["connectors"]["telegram"]
    tg["token"] = "${BOTKIT_TEST_TG_TOKEN}"
    if tg.get("webhook", {}).get("secret_token") is not None:
        tg["webhook"]["secret_token"] = "${BOTKIT_TEST_TG_SECRET}"
    return settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{db}"},
            "backend": {"kind": "echo", "echo": {"word_delay_seconds": 0}},
            "bot": {"rate_limit": {"enabled": False}, "shutdown_grace_seconds": 2},
            "language": {"detector": {"kind": "none"}},
            "metrics": {"listen": "127.0.0.1:0"},
            "connectors": {
                "telegram": {k: v for k, v in tg.items() if k != "enabled"},
                "web": {
                    "host": "127.0.0.1",
                    "port": 0,
                    "allowed_origins": [ORIGIN],
                    "site_key": "shop",
                    "site_secret": "${SITE_SECRET}",
                    "user_token_secret": "${USER_TOKEN_SECRET}",
                },
            },
        },
        environ={
            "BOTKIT_TEST_TG_TOKEN": TOKEN,
            "BOTKIT_TEST_TG_SECRET": SECRET,
            "SITE_SECRET": "botkit-test-secret-0123456789",
            "USER_TOKEN_SECRET": "botkit-test-jwt-secret-9876543210",
        },
    )


@pytest.fixture(autouse=True)
def fast_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "TOKEN_RECHECK_S", 0.05, raising=False)


@pytest.fixture
async def running(
    tmp_path: Path, fake: FakeTelegramDrafts
) -> AsyncIterator[tuple[Bot, asyncio.Task[None]]]:
    async with Bot(_settings(tmp_path / "tg.db", fake)) as bot:
        task = asyncio.create_task(bot.run())
        await fake.wait_until(lambda: bool(fake.calls_to("deleteWebhook")), 30)
        web = bot.connectors["web"]
        assert isinstance(web, WebConnector)
        for _ in range(600):  # the web port is bound after Telegram connected
            if web.port:
                break
            await asyncio.sleep(0.05)
        yield bot, task
        bot.stop()
        await asyncio.gather(task, return_exceptions=True)


async def _web_answers(http: aiohttp.ClientSession, web: WebConnector, text: str) -> str:
    """Post ``text`` through the widget's HTTP API; the bot's reply."""
    base = web.url
    async with http.post(
        f"{base}/api/session", json={"site_key": "shop"}, headers={"Origin": ORIGIN}
    ) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["token"]
    auth = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    async with http.post(
        f"{base}/api/messages", json={"client_id": "c1", "text": text}, headers=auth
    ) as resp:
        assert resp.status in (200, 201), await resp.text()
    async with asyncio.timeout(30):
        while True:
            async with http.get(
                f"{base}/api/messages", params={"after_seq": 0, "wait": 5}, headers=auth
            ) as resp:
                messages = (await resp.json())["messages"]
            bot_says = [m["text"] for m in messages if m["direction"] == "out" and m["text"]]
            if bot_says:
                return str(bot_says[-1])


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as resp:
        return resp.status, await resp.text()


async def test_revoked_token_downs_telegram_only(
    running: tuple[Bot, asyncio.Task[None]],
    fake: FakeTelegramDrafts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot, task = running
    caplog.set_level(logging.INFO)
    tg, web = bot.connectors["telegram"], bot.connectors["web"]
    assert isinstance(tg, TelegramConnector) and isinstance(web, WebConnector)
    assert bot._metrics_server is not None
    metrics = f"http://127.0.0.1:{bot._metrics_server.port}"
    fake.push(fake.updates.message(CHAT, "before"))
    await fake.wait_until(lambda: len(fake.messages(CHAT)) >= 1)

    fake.token = "999:revoked-in-botfather"  # every call is answered 401 Unauthorized
    polls = len(fake.calls_to("getUpdates", ok=False))
    # Refused again and again (asked every TOKEN_RECHECK_S): still one ERROR.
    await fake.wait_until(lambda: len(fake.calls_to("getUpdates", ok=False)) > polls + 20)
    assert not tg.health.up
    assert not task.done(), "the process must keep running for its other channels"

    async with aiohttp.ClientSession() as http:
        assert "echo: still here" in await _web_answers(http, web, "still here")
        status, body = await _get(http, f"{metrics}/metrics")
        assert 'botkit_channel_up{channel="telegram"} 0.0' in body
        assert 'botkit_channel_up{channel="web"} 1.0' in body
        assert (await _get(http, f"{metrics}/healthz"))[0] == 200
        status, body = await _get(http, f"{metrics}/readyz")
        assert status == 200, body  # the widget serves: this process stays in rotation
        assert '"telegram": "down"' in body and '"web": "up"' in body

        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        line = errors[0].getMessage()
        assert "the bot token was rejected (see @BotFather)" in line
        assert "[connectors.telegram] token" in line and TOKEN not in line

        fake.token = TOKEN  # the rejection passed (or the token is valid again)
        await fake.wait_until(lambda: tg.health.up)
        assert "channel 'telegram' is up again" in caplog.text
        fake.push(fake.updates.message(CHAT, "after"))
        await fake.wait_until(lambda: any("after" in m.text for m in fake.messages(CHAT)))
        body = (await _get(http, f"{metrics}/metrics"))[1]
        assert 'botkit_channel_up{channel="telegram"} 1.0' in body
    assert not task.done()


async def test_revoked_on_send_webhook_mode(
    tmp_path: Path, fake: FakeTelegramDrafts, caplog: pytest.LogCaptureFixture
) -> None:
    """Webhook mode learns of it from a refused send (or its getMe check); updates
    arriving meanwhile are not taken (503: Telegram keeps them and sends them again),
    and once getMe passes, the ones sent again are answered."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(MessageContextFilter())
    backend = RecordingEcho()
    settings = tg_settings(tmp_path / "hook.db", fake, webhook_section())
    async with Bot(settings, backend=backend) as bot:
        task = asyncio.create_task(bot.run())
        await fake.wait_until(lambda: bool(fake.calls_to("setWebhook")), 30)
        tg = bot.connectors["telegram"]
        assert isinstance(tg, TelegramConnector)
        assert tg.port
        fake.token = "999:revoked-in-botfather"
        harness = _Hook(tg)
        assert await post_update(harness, fake.updates.message(CHAT, "one")) == 200  # type: ignore[arg-type]
        await _until(lambda: not tg.health.up)
        assert len(backend.requests) == 1  # that reply was generated, then refused
        held = [fake.updates.message(CHAT, f"more {i}") for i in range(5)]
        for update in held:
            assert await post_update(harness, update) == 503  # type: ignore[arg-type]
        sends = len(fake.calls_to("sendMessage", ok=False))
        start = fake.updates.message(CHAT, "/start")
        assert await post_update(harness, start) == 503  # type: ignore[arg-type]
        await bot.drain(30)
        await asyncio.sleep(0.5)  # the greeting would be sent in the background
        assert len(fake.calls_to("sendMessage", ok=False)) == sends  # not even tried
        history = await bot.history("telegram", str(CHAT))
        assert [h.text for h in history if h.direction == "in"] == ["one"]
        assert len(backend.requests) == 1, "no model time for replies that cannot be sent"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        fake.token = TOKEN
        await _until(lambda: tg.health.up)
        # The recheck is no message's work: its lines carry no message's tag.
        up_again = [r for r in caplog.records if "is up again" in r.getMessage()]
        assert [getattr(r, RECORD_ATTRIBUTE) for r in up_again] == [None]
        for update in held:  # Telegram sends them again: now they are answered
            assert await post_update(harness, update) == 200  # type: ignore[arg-type]
        await fake.wait_until(
            lambda: any(m.text == "echo: more 4" for m in fake.messages(CHAT)), 30
        )
        bot.stop()
        await asyncio.gather(task, return_exceptions=True)


class _Hook:
    """What ``post_update`` reads of a harness: the connector (its webhook port)."""

    def __init__(self, connector: TelegramConnector) -> None:
        self.connector = connector
