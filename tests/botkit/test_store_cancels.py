"""Cancels by the server (SQLSTATE 57014) are counted within one call only (review 2,
finding 1): a long-lived task that stores message after message (the outage spool)
must not add up their cancels and give up a message at its first one."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from core_helpers import message
from sqlalchemy.exc import DBAPIError

from botkit._outage_spool import UNREADABLE, OutageSpool, SpooledMessage
from botkit._spooled_intake import SpooledIntake
from botkit.channel import IntakeReceipt
from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.events import InboundMessage
from botkit.store._database import STATEMENT_CANCELS, Database, one_call


class _Cancelled(Exception):
    sqlstate = "57014"


def _cancel() -> DBAPIError:
    return DBAPIError("UPDATE ...", {}, _Cancelled("canceling statement due to statement timeout"))


def _submit(conn: object) -> None:
    """One store method's transaction function: the same site for every message."""


def _other(conn: object) -> None:
    """Another store method's."""


def _cancelled(db: Database) -> StoreError:
    return db._failure("write", _cancel(), maybe_committed=False, fn=_submit)


async def _store_kept(
    tmp_path: Path, keys: list[str], submit: Callable[[InboundMessage], Awaitable[IntakeReceipt]]
) -> bool:
    """Keep ``keys`` in an outage spool, then store them through ``submit`` as the bot
    does once the database answers; whether all were done within 10 s."""

    async def exists(channel: str, key: str) -> bool:
        return True

    async def record_agent(inbound: InboundMessage, name: str) -> bool:
        return False

    spool = OutageSpool(tmp_path / "spool", max_messages=100)
    await spool.load()
    for key in keys:
        await spool.keep(
            SpooledMessage(message("hi", key), existing_conversation_only=False, agent_name=None)
        )
    intake = SpooledIntake(spool, submit, exists, record_agent, lambda: True)
    intake.start_storing()
    try:
        return await intake.wait_stored(10)
    finally:
        await intake.close()


async def test_cancels_of_unrelated_calls_in_one_task_do_not_add_up() -> None:
    db = Database()

    async def long_lived() -> list[type[StoreError]]:
        seen = []
        for _ in range(STATEMENT_CANCELS + 2):  # each message cancelled once
            seen.append(type(_cancelled(db)))
            await asyncio.sleep(0)
            db._not_cancelled(_other)  # another store method goes through meanwhile
        return seen

    seen = await asyncio.create_task(long_lived())
    assert seen == [DatabaseUnavailableError] * (STATEMENT_CANCELS + 2)


async def test_within_one_call_the_same_statement_is_given_up_and_a_new_call_starts_again() -> None:
    db = Database()
    for _ in range(2):  # two calls, one after the other in one task
        with one_call():
            seen = [type(_cancelled(db)) for _ in range(STATEMENT_CANCELS)]
        assert seen == [DatabaseUnavailableError] * (STATEMENT_CANCELS - 1) + [StoreError]
    # Going through forgets the count; another site has one of its own.
    with one_call():
        _cancelled(db)
        db._not_cancelled(_submit)
        assert isinstance(_cancelled(db), DatabaseUnavailableError)
        assert isinstance(_cancelled(db), DatabaseUnavailableError)
    # A caller may keep its count across calls of its own (the recovery passes).
    kept: Counter[object] = Counter()
    for expected in [DatabaseUnavailableError] * (STATEMENT_CANCELS - 1) + [StoreError]:
        with one_call(kept):
            assert type(_cancelled(db)) is expected


async def test_the_spool_gives_each_kept_message_its_own_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each kept message's first try is cancelled once (a migration, an overload with a
    statement_timeout): all of them are stored, none set aside as "cannot be stored"."""
    monkeypatch.setattr("botkit._spooled_intake.DATABASE_RETRY_S", (0.001, 0.002))
    db = Database()
    tried: Counter[str] = Counter()
    stored: list[str] = []

    async def submit(inbound: InboundMessage) -> IntakeReceipt:
        key = inbound.idempotency_key
        tried[key] += 1
        if tried[key] == 1:
            raise _cancelled(db)
        db._not_cancelled(_other)  # its second try goes another way (found stored)
        stored.append(key)
        return IntakeReceipt(conversation_id=1, seq=len(stored), duplicate=False)

    keys = [f"k{i}" for i in range(STATEMENT_CANCELS + 2)]
    assert await _store_kept(tmp_path, keys, submit)
    assert stored == keys
    assert not (tmp_path / "spool" / UNREADABLE).exists()


async def test_the_spool_sets_aside_a_message_whose_statement_is_always_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement slow on its own (cancelled at every try) is given up after
    STATEMENT_CANCELS tries, not tried until shutdown: the messages behind it go on."""
    monkeypatch.setattr("botkit._spooled_intake.DATABASE_RETRY_S", (0.001, 0.002))
    db = Database()
    tried: Counter[str] = Counter()
    stored: list[str] = []

    async def submit(inbound: InboundMessage) -> IntakeReceipt:
        key = inbound.idempotency_key
        tried[key] += 1
        if key == "slow":
            raise _cancelled(db)
        stored.append(key)
        return IntakeReceipt(conversation_id=1, seq=len(stored), duplicate=False)

    assert await _store_kept(tmp_path, ["slow", "next"], submit)
    assert stored == ["next"]
    assert tried["slow"] == STATEMENT_CANCELS
    assert len(list((tmp_path / "spool" / UNREADABLE).iterdir())) == 1
