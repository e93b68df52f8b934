"""A statement the server cancels (review finding 2): a lock wait cut by lock_timeout
(55P03) is an outage, waited for however long the lock is held; a statement cancelled by
statement_timeout (57014) every time is given up after ``STATEMENT_CANCELS`` tries within
one call (``one_call``: a reply, one kept message), as a plain failure, instead of being
tried until shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from conftest import MakeMessage

from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.store import ConversationStore, StoreSettings, _database, migrate

pytestmark = pytest.mark.postgres


async def _until_stored(call: Callable[[], Awaitable[object]], tries: int) -> int:
    """What a reply does (botkit/_replies.py): try again while the database is
    unavailable. Returns the tries it took."""
    for attempt in range(1, tries + 1):
        try:
            await call()
            return attempt
        except DatabaseUnavailableError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"still unavailable after {tries} tries")


async def _set(db_url: str, setting: str) -> asyncpg.Connection:
    await migrate.upgrade(db_url)  # a database of its own: its settings are changed
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    name = await conn.fetchval("SELECT current_database()")
    await conn.execute(f'ALTER DATABASE "{name}" SET {setting}')
    return conn


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_statement_that_always_times_out_is_given_up(
    db_url: str, make_message: MakeMessage
) -> None:
    locker = await _set(db_url, "statement_timeout = '150ms'")
    try:
        async with ConversationStore(StoreSettings(url=db_url)) as store:
            await store.intake(make_message(), text="hi")
            async with locker.transaction():  # held for longer than anyone waits
                await locker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
                started = time.monotonic()
                with _database.one_call():
                    with pytest.raises(StoreError, match="cancelled the same statement") as caught:
                        await _until_stored(lambda: store.intake(make_message(), text="hi"), 20)
                assert not isinstance(caught.value, DatabaseUnavailableError)
                # Given up after its few tries, not waited for as long as the lock lasts
                # (20 s here); a loose bound, so a loaded machine does not fail it.
                assert time.monotonic() - started < 10
                # Another call has a budget of its own: this one's is not spent.
                with _database.one_call(), pytest.raises(DatabaseUnavailableError):
                    await store.intake(make_message(), text="hi")
                # Outside one_call nothing is counted (review 2, finding 1): a
                # long-lived task's unrelated calls must not add up their cancels.
                for _ in range(_database.STATEMENT_CANCELS + 1):
                    with pytest.raises(DatabaseUnavailableError):
                        await store.intake(make_message(), text="hi")
    finally:
        await locker.close()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_tries_in_tasks_of_their_own_are_one_call_within_one_call(
    db_url: str, make_message: MakeMessage
) -> None:
    """A reply's write is tried in a task of its own each time (botkit/_delivery.py):
    within ``one_call`` (the reply, botkit/_replies.py) those tries share one count."""
    locker = await _set(db_url, "statement_timeout = '150ms'")
    try:
        async with ConversationStore(StoreSettings(url=db_url)) as store:
            await store.intake(make_message(), text="hi")
            async with locker.transaction():
                await locker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")

                async def in_a_task() -> object:
                    return await asyncio.ensure_future(store.intake(make_message(), text="hi"))

                with _database.one_call():
                    with pytest.raises(StoreError, match="cancelled the same statement") as caught:
                        await _until_stored(in_a_task, 20)
                assert not isinstance(caught.value, DatabaseUnavailableError)
    finally:
        await locker.close()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_lock_that_goes_away_is_waited_for(db_url: str, make_message: MakeMessage) -> None:
    locker = await _set(db_url, "lock_timeout = '100ms'")
    try:
        async with ConversationStore(StoreSettings(url=db_url)) as store:
            await store.intake(make_message(), text="hi")
            await locker.execute("BEGIN")
            await locker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")

            async def release() -> None:
                await asyncio.sleep(1.5)
                await locker.execute("COMMIT")

            releasing = asyncio.ensure_future(release())
            tries = await _until_stored(lambda: store.intake(make_message(), text="hi"), 100)
            await releasing
            assert tries > _database.STATEMENT_CANCELS
    finally:
        await locker.close()
