"""Recovery on start answers what a crash left unanswered, once, and nothing else.

- A reply that was stored but never reached the customer (shutdown cut its last send)
  leaves the message unanswered, so the next start answers it.
- A message stored in the last seconds may be one a stopping process is still
  answering (a rolling restart): it is answered only after that process's grace
  period, and only if it is still unanswered then.
- A message found by recovery and by its own ``submit`` at once gets one reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from core_helpers import RecordingConnector, backdate_messages, message, recorder

from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.events import Direction, utcnow
from botkit.store import MessageStatus


class _StoresThenHangs(RecordingConnector):
    """Stores the reply (``final()``), then hangs in the platform call that would
    deliver it, as when Telegram asks to retry after a while."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.stored = asyncio.Event()

    async def send_stream(self, stream: ReplyStream) -> None:
        async for _ in stream:
            pass
        await stream.final()
        self.stored.set()
        await asyncio.Event().wait()


class _Listening(RecordingConnector):
    """A connector whose listener runs until the bot stops."""

    async def listen(self) -> None:
        await asyncio.Event().wait()


async def _statuses(bot: Bot) -> list[tuple[Direction, MessageStatus]]:
    rows = await bot.store.messages_after("test", "c1", 0, 20)
    return [(r.direction, r.status) for r in rows]


async def test_a_reply_stored_but_cut_off_by_shutdown_is_answered_on_the_next_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"shutdown_grace_seconds": 0})
    async with Bot(settings) as bot:
        connector = _StoresThenHangs(bot)
        bot.attach_connector(connector)
        await bot.submit(message("where is my parcel?", "k1"))
        await asyncio.wait_for(connector.stored.wait(), 10)  # the reply is stored...
    # ...and shutdown cut off its delivery: the customer never got it.
    async with Bot(settings) as bot:
        assert await _statuses(bot) == [
            (Direction.INBOUND, MessageStatus.RECEIVED),
            (Direction.OUTBOUND, MessageStatus.FAILED),
        ]
    backdate_messages(settings, 60)
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await asyncio.wait_for(bot.run(), 10)
        assert [r.text for r in recorder(bot).replies] == ["echo: where is my parcel?"]
        assert (await _statuses(bot))[0] == (Direction.INBOUND, MessageStatus.ANSWERED)


async def test_a_message_a_stopping_process_is_answering_is_not_answered_again(
    make_settings: Callable[..., Settings],
) -> None:
    slow = make_settings(backend={"echo": {"word_delay_seconds": 0.3}})
    fresh = make_settings(bot={"shutdown_grace_seconds": 0.5})
    async with Bot(slow) as old:
        old.attach_connector(RecordingConnector(old))
        await old.submit(message("where is my parcel please", "k1"))
        await asyncio.sleep(0.2)  # the old process is streaming its answer...
        async with Bot(fresh) as new:  # ...when the new one starts (a rolling restart)
            new.attach_connector(_Listening(new))
            running = asyncio.create_task(new.run())
            assert await old.drain(30)
            await asyncio.sleep(0.5 + 2.5)  # past the old process's grace period
            new.stop()
            await running
            assert recorder(new).replies == []
    assert [r.text for r in recorder(old).replies] == ["echo: where is my parcel please"]


async def test_a_recent_leftover_is_answered_once_the_grace_period_is_over(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"shutdown_grace_seconds": 0})
    dying = make_settings(
        bot={"shutdown_grace_seconds": 0}, backend={"echo": {"word_delay_seconds": 0.5}}
    )
    async with Bot(dying) as crashed:
        crashed.attach_connector(RecordingConnector(crashed))
        await crashed.submit(message("hello?", "k1"))
        await asyncio.sleep(0.05)
    async with Bot(settings) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        started = utcnow()
        running = asyncio.create_task(bot.run())
        await connector.wait_for(1, within=10)
        waited = (utcnow() - started).total_seconds()
        bot.stop()
        await running
    assert [r.text for r in connector.replies] == ["echo: hello?"]
    assert waited >= 1.5  # not at once: another process might still have been on it


async def test_a_message_found_by_recovery_and_by_its_submit_is_answered_once(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        store = bot.store
        committed, recovered = asyncio.Event(), asyncio.Event()
        real_intake, real_unanswered = store.intake, store.unanswered

        async def intake(*args: object, **kwargs: object) -> object:
            result = await real_intake(*args, **kwargs)  # type: ignore[arg-type]
            committed.set()  # stored as 'received'...
            await recovered.wait()  # ...but submit() goes on only after recovery ran
            return result

        async def unanswered(**kwargs: object) -> object:
            await committed.wait()  # recovery's query sees the new message
            return await real_unanswered(**kwargs)  # type: ignore[arg-type]

        store.intake, store.unanswered = intake, unanswered  # type: ignore[method-assign,assignment]

        async def recover() -> None:
            # Everything stored so far counts (as for a leftover of a crash long ago).
            await bot._resume_unanswered(stored_before=utcnow() + timedelta(minutes=1))
            recovered.set()

        await asyncio.gather(bot.submit(message("hello there", "k1")), recover())
        assert await bot.drain(30)
    assert [r.text for r in recorder(bot).replies] == ["echo: hello there"]
