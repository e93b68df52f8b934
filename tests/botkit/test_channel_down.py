"""A channel that is down (its credentials rejected) while another serves: the process
keeps serving the other, logs one ERROR, and ``/readyz`` names it. A listener that fails
for any other reason ends ``run()``, for the supervisor to restart the process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import ClassVar

import pytest
from core_helpers import RecordingConnector, message

from botkit.bot import Bot
from botkit.channel_health import ChannelHealth
from botkit.config import Settings
from botkit.errors import ConnectorError
from botkit.readiness import Readiness, answer_readiness


async def _until(check: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until ``check()`` is true; ``TimeoutError`` after ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError


class _Failing(RecordingConnector):
    """A channel whose listener fails at once (a bug, an error it does not retry)."""

    name: ClassVar[str] = "failing"

    async def listen(self) -> None:
        raise ConnectorError("failing: the listener broke")


class _Rejected(RecordingConnector):
    """A channel whose token is rejected at run time: its connector says so through
    ``health`` and keeps listening (as Telegram's poller and Slack's token watch do)."""

    name: ClassVar[str] = "rejected"

    async def listen(self) -> None:
        self.health.down("rejected: the bot token was rejected; put a valid one")
        await asyncio.Event().wait()


class _Serving(RecordingConnector):
    """A channel that serves until the bot stops."""

    name: ClassVar[str] = "serving"

    async def listen(self) -> None:
        await asyncio.Event().wait()


async def test_a_failed_listener_ends_run_while_another_channel_serves(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # Not only the channel marked down: nothing would restart it, and /readyz stays 200.
    async with Bot(make_settings()) as bot:
        failing, serving = _Failing(bot), _Serving(bot)
        bot.attach_connector(failing)
        bot.attach_connector(serving)
        with pytest.raises(ConnectorError, match="the listener broke"):
            await asyncio.wait_for(bot.run(), 30)
        assert failing.health.up  # a failure is not a rejected credential
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["connector 'failing' failed: failing: the listener broke"], errors


async def test_a_rejected_token_leaves_the_other_channels_serving(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    async with Bot(make_settings()) as bot:
        rejected, serving = _Rejected(bot), _Serving(bot)
        bot.attach_connector(rejected)
        bot.attach_connector(serving)
        run = asyncio.create_task(bot.run())
        await _until(lambda: not rejected.health.up)
        assert not run.done()
        await bot.submit(message("still served", "k1", channel="serving"))
        assert await bot.drain(30)
        assert [r.text for r in serving.replies] == ["echo: still served"]
        scrape = bot.metrics.render().decode()
        assert 'botkit_channel_up{channel="rejected"} 0.0' in scrape
        assert 'botkit_channel_up{channel="serving"} 1.0' in scrape
        readiness = await bot.readiness()
        assert readiness.ready and readiness.channels == {"rejected": False, "serving": True}
        # A message that reaches the down channel is stored, not generated for.
        await bot.submit(message("on the down one", "k2", channel="rejected"))
        assert await bot.drain(30)
        assert rejected.replies == []
        assert 'botkit_replies_total{channel="rejected",outcome="failed"} 1.0' in (
            bot.metrics.render().decode()
        )
        bot.stop()
        await asyncio.wait_for(run, 30)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "channel 'rejected' is down" in errors[0], errors


def test_channel_health_logs_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    health = ChannelHealth("telegram", clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="botkit.channels")
    assert health.down("token rejected")
    for _ in range(50):
        assert not health.down("token rejected")
        now[0] += 1.0
    now[0] += 11.0  # 61 s after the first
    health.down("token rejected")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "50 more" in errors[1].getMessage()
    assert health.back() and health.up and not health.back()
    assert "channel 'telegram' is up again" in caplog.text
    # Down again at once is a change: logged, so the last line says what it is now.
    health.down("token rejected")
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 3


async def test_readiness_body_names_the_part() -> None:
    class _Core:
        async def readiness(self) -> Readiness:
            return Readiness(accepting=True, store=True, backend=False, channels={"web": True})

        async def ready(self) -> bool:
            return False

    status, body = await answer_readiness(_Core())
    assert status == 503
    assert body == {
        "status": "not_ready",
        "accepting": True,
        "store": "ok",
        "backend": "down",
        "channels": {"web": "up"},
        "not_ready": ["backend"],
    }

    class _Old:  # a core that only says ready or not keeps the old body
        async def ready(self) -> bool:
            return True

    assert await answer_readiness(_Old()) == (200, {"status": "ready"})

    class _Hangs:
        async def ready(self) -> bool:
            await asyncio.sleep(10)
            return True

    status, body = await answer_readiness(_Hangs(), timeout_s=0.05)
    assert (status, body["status"], body["error"]) == (503, "not_ready", "timeout")
