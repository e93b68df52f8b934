"""A channel's redelivery of a message the bot stored: answered once, never twice.

The case that needs more than ignoring the duplicate: the first ``submit`` failed at the
intake's COMMIT after the server had committed it (the connection died in between), so
the channel was told to retry while the message sits stored, claimed by this process,
with no reply task. Recovery never takes what a live process claimed: the redelivery is
what answers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import DatabaseUnavailableError
from botkit.store import MessageStatus


def _cut_at_commit(bot: Bot) -> None:
    """The next intake commits, then its caller hears that the connection was lost
    (what ``Database._write`` raises when COMMIT got no answer)."""
    store = bot.store
    real = store.intake

    async def committed_then_lost(*args: Any, **kwargs: Any) -> Any:
        store.intake = real  # type: ignore[method-assign]
        await real(*args, **kwargs)
        raise DatabaseUnavailableError(
            "database write failed: connection lost: at COMMIT", maybe_committed=True
        )

    store.intake = committed_then_lost  # type: ignore[method-assign]


async def _inbound_status(bot: Bot, conversation: str = "c1") -> MessageStatus:
    rows = await bot.store.messages_after("test", conversation, 0, 10)
    return rows[0].status


async def test_a_message_stored_at_a_cut_commit_is_answered_on_its_redelivery(
    bot: Bot,
) -> None:
    _cut_at_commit(bot)
    with pytest.raises(DatabaseUnavailableError):
        await bot.submit(message("where is my parcel?", "k1"))
    assert len(bot._replies) == 0  # stored, claimed here, and nobody answers it
    assert await _inbound_status(bot) is MessageStatus.RECEIVED

    receipt = await bot.submit(message("where is my parcel?", "k1"))  # the channel retries
    assert receipt.duplicate
    (reply,) = await recorder(bot).wait_for(1)
    assert reply.text == "echo: where is my parcel?"
    assert await bot.drain(10)
    assert await _inbound_status(bot) is MessageStatus.ANSWERED

    assert (await bot.submit(message("where is my parcel?", "k1"))).duplicate
    assert await bot.drain(10)
    assert len(recorder(bot).replies) == 1


async def test_a_message_kept_after_a_cut_commit_is_answered_once_when_stored(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """``submit_or_keep`` (Slack, Telegram) keeps a message whose intake COMMIT was cut;
    storing the kept copy finds the committed one and answers it, once."""
    settings = make_settings(store={"outage_spool_dir": str(tmp_path / "spool")})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        _cut_at_commit(bot)
        assert await bot.submit_or_keep(message("where is my parcel?", "k1")) is None
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text == "echo: where is my parcel?"
        assert await bot.drain(10)
        assert await _inbound_status(bot) is MessageStatus.ANSWERED
        assert len(recorder(bot).replies) == 1


async def test_redeliveries_while_the_reply_runs_get_no_second_reply(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(backend={"echo": {"word_delay_seconds": 0.05}})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        first = message("one two three four five", "k1")
        await bot.submit(first)
        receipts = await asyncio.gather(*(bot.submit(first) for _ in range(5)))
        assert all(r.duplicate for r in receipts)
        assert await bot.drain(10)
        assert [r.text for r in recorder(bot).replies] == ["echo: one two three four five"]


async def test_a_redelivery_of_a_message_a_live_peer_answers_is_left_to_it(
    shared_settings: Callable[..., Settings],
) -> None:
    """The channel redelivers to another process of the deployment (a load balancer's
    choice) while the one that stored the message still streams its reply."""
    async with Bot(shared_settings(echo={"word_delay_seconds": 0.2})) as peer:
        peer.attach_connector(RecordingConnector(peer))
        async with Bot(shared_settings()) as here:
            here.attach_connector(RecordingConnector(here))
            await peer.submit(message("is the shop open on sunday", "k1"))
            assert (await here.submit(message("is the shop open on sunday", "k1"))).duplicate
            assert await peer.drain(30)
            assert await here.drain(10)
            assert recorder(here).replies == []
    assert [r.text for r in recorder(peer).replies] == ["echo: is the shop open on sunday"]
