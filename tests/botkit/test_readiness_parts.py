"""``/readyz`` names the part that is not ready: a hanging store is "store": "down"
(each check's bound is shorter than the whole answer's), and a process whose channels
are all down is not ready."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

import pytest
from core_helpers import RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings
from botkit.readiness import CHECK_TIMEOUT_S, READY_TIMEOUT_S, answer_readiness


class _Other(RecordingConnector):
    name: ClassVar[str] = "other"


async def test_a_hanging_store_is_named_not_a_bare_timeout(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CHECK_TIMEOUT_S < READY_TIMEOUT_S
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))

        async def hangs() -> bool:
            await asyncio.sleep(60)
            return True

        monkeypatch.setattr(bot.store, "ping", hangs)
        status, body = await answer_readiness(bot)
    assert status == 503
    assert body["store"] == "down" and body["backend"] == "ok", body
    assert body["not_ready"] == ["store"]


async def test_all_channels_down_is_not_ready(make_settings: Callable[..., Settings]) -> None:
    async with Bot(make_settings()) as bot:
        one, other = RecordingConnector(bot), _Other(bot)
        bot.attach_connector(one)
        bot.attach_connector(other)
        one.health.down("one: the token was rejected")
        assert (await answer_readiness(bot))[0] == 200  # another channel serves
        other.health.down("other: the token was rejected")
        status, body = await answer_readiness(bot)
    assert status == 503
    assert body["channels"] == {one.name: "down", "other": "down"}
    assert body["not_ready"] == ["channels"]
