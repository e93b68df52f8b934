"""Session keys kept in the store: made once per name, the same for every process sharing
the database and for every later run, also when processes ask for it at the same moment;
migration 0007 adds and drops their table (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from botkit.errors import StoreError
from botkit.store import ConversationStore, StoreSettings, migrate
from botkit.store._runner import create_runner


async def test_a_key_is_made_once_and_kept(migrated_db_url: str) -> None:
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as store:
        key = await store.session_key("web")
        assert isinstance(key, bytes) and len(key) == 32
        assert await store.session_key("web") == key
        other = await store.session_key("slack")
        assert other != key and len(other) == 32
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as later:  # a restart
        assert await later.session_key("web") == key


async def test_processes_starting_at_once_end_with_the_same_key(migrated_db_url: str) -> None:
    # Separate stores: separate connection pools, as separate processes have.
    settings = StoreSettings(url=migrated_db_url)
    async with ConversationStore(settings) as a, ConversationStore(settings) as b:
        names = [f"race-{n}" for n in range(20)]
        ours, theirs = await asyncio.gather(
            asyncio.gather(*(a.session_key(n) for n in names)),
            asyncio.gather(*(b.session_key(n) for n in reversed(names))),
        )
        assert list(ours) == list(reversed(theirs))
        assert len(set(ours)) == len(names)  # each name its own random key


@pytest.mark.parametrize("name", ["", "x" * 65, "bad name", "nul\x00", "Web"])
async def test_a_bad_name_is_a_store_error(migrated_db_url: str, name: str) -> None:
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as store:
        with pytest.raises(StoreError, match="session key name"):
            await store.session_key(name)


async def _tables(url: str) -> set[str]:
    runner = create_runner(url, pooled=False)
    try:
        names: list[str] = await runner.read(lambda conn: inspect(conn).get_table_names())
        return set(names)
    finally:
        await runner.dispose()


async def test_migration_0007_adds_and_drops_the_table(db_url: str) -> None:
    await migrate.upgrade(db_url, "0006")
    assert "session_keys" not in await _tables(db_url)
    await migrate.upgrade(db_url)
    assert "session_keys" in await _tables(db_url)
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        first = await store.session_key("web")
    await migrate.downgrade(db_url, "0006")
    assert "session_keys" not in await _tables(db_url)
    assert await migrate.current(db_url) == "0006"
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        # Going back dropped the key: its tokens are refused from then on.
        assert await store.session_key("web") != first
