"""At shutdown a channel submits what it held back (``Connector.hand_over_held``)
while the bot still takes messages: it is stored and answered within the grace. A
channel that fails or hangs there does not keep the bot from stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from core_helpers import RecordingConnector, message, recorder

import botkit.bot as bot_module
from botkit.bot import Bot
from botkit.config import Settings


class _Holding(RecordingConnector):
    """Listens until cancelled; holds one message back until the hand-over."""

    def __init__(self, core: Bot, hand_over: str) -> None:
        super().__init__(core)
        self.core = core
        self.hand_over = hand_over

    async def listen(self) -> None:
        await asyncio.Event().wait()

    async def hand_over_held(self) -> None:
        if self.hand_over == "submit":
            await self.core.submit(message("held back", "held"))
        elif self.hand_over == "raise":
            raise RuntimeError("could not hand over")
        else:
            await asyncio.Event().wait()  # hangs


async def test_what_a_channel_held_is_stored_and_answered_at_the_stop(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(_Holding(bot, "submit"))
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(0.05)
        bot.stop()
        await asyncio.wait_for(running, 30)
        assert [r.text for r in recorder(bot).replies] == ["echo: held back"]


@pytest.mark.parametrize("hand_over", ["raise", "hang"])
async def test_a_channel_failing_to_hand_over_does_not_keep_the_bot_running(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    hand_over: str,
) -> None:
    monkeypatch.setattr(bot_module, "HAND_OVER_S", 0.2)
    async with Bot(make_settings()) as bot:
        bot.attach_connector(_Holding(bot, hand_over))
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(0.05)
        bot.stop()
        await asyncio.wait_for(running, 30)
    assert "hand over" in caplog.text or "still held input" in caplog.text
