"""A backend that stops for good (``StopsForGood``: the local engine after its steps
failed in a row) stops the bot, so that its supervisor starts a new process, instead
of every customer getting the fallback reply from then on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from core_helpers import RecordingConnector, message, recorder

import botkit.bot as bot_module
from botkit.backends.echo import EchoBackend
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import BackendError
from botkit.testing.translator import MarkingTranslator


class _MortalEcho(EchoBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def stopped_for_good(self) -> str | None:
        return self.reason


class _Listening(RecordingConnector):
    """Listens until disconnected, like a real channel."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.disconnected = asyncio.Event()

    async def listen(self) -> None:
        await self.disconnected.wait()

    async def disconnect(self) -> None:
        self.disconnected.set()


async def test_the_bot_stops_when_its_backend_stopped_for_good(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_module, "BACKEND_WATCH_S", 0.01)
    backend = _MortalEcho()
    async with Bot(make_settings(), backend=backend) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        running = asyncio.create_task(bot.run())
        await bot.submit(message("still fine", "k1"))
        await recorder(bot).wait_for(1)
        await asyncio.sleep(0.05)  # several looks at a backend that is fine
        assert not running.done()
        backend.reason = "the local engine stopped: its steps failed several times in a row"
        with pytest.raises(BackendError, match=r"the local engine stopped.*; the bot stops"):
            await asyncio.wait_for(running, 30)
        assert connector.disconnected.is_set()  # an orderly stop, channels closed


class _MortalTranslator(MarkingTranslator):
    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def stopped_for_good(self) -> str | None:
        return self.reason


class _BrokenLook(EchoBackend):
    def stopped_for_good(self) -> str | None:
        raise RuntimeError("a third-party backend's bug")


async def test_a_translator_that_stopped_for_good_stops_the_bot_too(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pivot mode's translation engine dies like the chat engine: every message
    # would fail its translation from then on. A backend that cannot even say whether
    # it stopped does not end the bot.
    monkeypatch.setattr(bot_module, "BACKEND_WATCH_S", 0.01)
    translator = _MortalTranslator()
    async with Bot(make_settings(), backend=_BrokenLook(), translator=translator) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(0.05)
        assert not running.done()
        translator.reason = "the translation engine stopped"
        with pytest.raises(BackendError, match="the translation engine stopped; the bot stops"):
            await asyncio.wait_for(running, 30)
