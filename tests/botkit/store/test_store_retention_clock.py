"""A retention purge never deletes by a clock that looks wrong: on PostgreSQL its cutoff is
the database's clock and it refuses while this host's disagrees. On SQLite the host's
clock is the database's: there is nothing to compare it with, and a quiet bot still
purges."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from clock_helpers import host_clock
from conftest import MakeMessage

from botkit._data_cli import purge
from botkit._retention import purge_once
from botkit.errors import StoreError
from botkit.store import ConversationStore

PG = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


async def _stored_ago(
    store: ConversationStore, make: MakeMessage, ago: timedelta, *, idle: bool = False
) -> None:
    """A conversation whose last message came ``ago`` ago ("conv-1" on "web"), in a bot
    in use (another customer wrote just now) unless ``idle``."""
    with host_clock(-ago):
        await store.intake(make("my order #123"), text="my order #123")
    if not idle:
        await store.intake(make("hello", conversation="conv-2", user="u2"), text="hello")


async def _left(store: ConversationStore) -> int:
    return len(await store.messages_after("web", "conv-1", 0, 10))


@PG
async def test_a_clock_jumped_89_days_ahead_purges_nothing(
    store: ConversationStore, make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    # The audit's case: retention_days = 90, a conversation active two days ago.
    await _stored_ago(store, make_message, timedelta(days=2))
    caplog.set_level(logging.INFO, "botkit.store")
    with host_clock(timedelta(days=89)):
        await purge_once(store, 90)
        with pytest.raises(StoreError, match="purging nothing"):
            await purge(store.settings, 90)  # botkit data purge
    assert await _left(store) == 1
    [(level, line)] = [
        (r.levelno, r.getMessage()) for r in caplog.records if "retention" in r.getMessage()
    ]
    assert level == logging.ERROR and "purging nothing" in line
    assert line.count("(2") == 2  # this host's time and the database's
    await purge_once(store, 90)  # the clock is right again: nothing is due yet
    await purge_once(store, 1)  # ... and the conversation is purged when due
    assert await _left(store) == 0


async def test_a_clock_within_a_day_purges_what_is_due(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await _stored_ago(store, make_message, timedelta(days=3))
    with host_clock(timedelta(hours=12)):
        await purge_once(store, 3)
    assert await _left(store) == 0


async def test_a_bot_with_no_message_for_days_still_purges(
    store: ConversationStore, make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    # A quiet weekend is not a clock that jumped: no refusal, no error.
    await _stored_ago(store, make_message, timedelta(days=3), idle=True)
    caplog.set_level(logging.ERROR, "botkit.store")
    await purge_once(store, 1)
    assert await _left(store) == 0
    assert "purging nothing" not in caplog.text


@PG
async def test_the_cutoff_is_the_databases_clock(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # Active 6 hours short of 3 days ago; this host's clock is 12 hours ahead (within
    # the margin): by its clock the conversation is due, by the database's it is not.
    await _stored_ago(store, make_message, timedelta(days=3) - timedelta(hours=6))
    with host_clock(timedelta(hours=12)):
        await purge_once(store, 3)
    assert await _left(store) == 1


@PG
@pytest.mark.parametrize("off", [timedelta(days=2), -timedelta(days=2)])
async def test_a_host_clock_a_day_off_the_databases_purges_nothing(
    store: ConversationStore,
    make_message: MakeMessage,
    caplog: pytest.LogCaptureFixture,
    off: timedelta,
) -> None:
    # Either clock may be the wrong one: nothing tells which, so neither is used.
    await _stored_ago(store, make_message, timedelta(days=5))
    caplog.set_level(logging.ERROR, "botkit.store")
    with host_clock(off):
        await purge_once(store, 1)
    assert await _left(store) == 1
    assert "and the database's" in caplog.text and "differ by 2.0 days" in caplog.text
