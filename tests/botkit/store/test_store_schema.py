"""ensure_schema: SQLite upgrades itself; PostgreSQL refuses to start when behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from botkit.errors import SchemaOutdatedError, StoreError
from botkit.events import InboundMessage
from botkit.store import ConversationStore, StoreSettings, migrate
from botkit.store._runner import create_runner
from botkit.store.models import VERSION_TABLE

MakeMessage = Callable[..., InboundMessage]
PG_ONLY = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


async def test_sqlite_file_is_upgraded_automatically(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'bot.db'}"
    async with ConversationStore(StoreSettings(url=url)) as store:
        await store.ensure_schema()
        assert await migrate.current(url) == migrate.head()
        await store.ensure_schema()  # already current: nothing to do


async def test_sqlite_without_auto_upgrade_names_the_command(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    async with ConversationStore(StoreSettings(url=url, auto_migrate=False)) as store:
        with pytest.raises(SchemaOutdatedError, match="botkit db upgrade -c FILE"):
            await store.ensure_schema()
        await store.ensure_schema(auto_upgrade=True)  # the argument overrides the setting
    assert await migrate.is_up_to_date(url)


async def test_in_memory_sqlite_works(make_message: MakeMessage) -> None:
    async with ConversationStore(StoreSettings(url="sqlite+aiosqlite://")) as store:
        assert store.in_memory
        await store.ensure_schema()
        result = await store.intake(make_message(), text="hi")
        assert result.message.seq == 1
        assert [m.text for m in await store.messages_after("web", "conv-1", 0)] == ["hi"]


@pytest.mark.postgres
@PG_ONLY
async def test_postgres_without_schema_refuses_to_start(db_url: str) -> None:
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        with pytest.raises(SchemaOutdatedError) as caught:
            await store.ensure_schema(auto_upgrade=True)  # never upgrades PostgreSQL
        message = str(caught.value)
        assert "botkit db upgrade -c FILE" in message
        assert "no botkit schema" in message
        assert caught.value.exit_code == 3
    assert await migrate.current(db_url) is None  # nothing was created


@pytest.mark.postgres
@PG_ONLY
async def test_postgres_behind_after_downgrade_refuses(db_url: str) -> None:
    await migrate.upgrade(db_url)
    await migrate.downgrade(db_url, "base")
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        with pytest.raises(SchemaOutdatedError, match="botkit db upgrade -c FILE"):
            await store.ensure_schema()
        await migrate.upgrade(db_url)
        await store.ensure_schema()  # current now


async def test_database_newer_than_the_code_is_refused(db_url: str) -> None:
    await migrate.upgrade(db_url)
    runner = create_runner(db_url, pooled=False)
    try:
        await runner.write(
            lambda c: c.exec_driver_sql(
                f"UPDATE {VERSION_TABLE} SET version_num = '9999_from_the_future'"
            )
        )
    finally:
        await runner.dispose()
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        # '9999_from_the_future' is no revision this botkit ships, so it reads as a newer database.
        with pytest.raises(StoreError, match="does not know") as caught:
            await store.ensure_schema()
        assert not isinstance(caught.value, SchemaOutdatedError)


@pytest.mark.postgres
@PG_ONLY
async def test_outdated_message_masks_the_password(db_url: str) -> None:
    # trust authentication ignores the password, so it can be any secret.
    url = make_url(db_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    async with ConversationStore(StoreSettings(url=url)) as store:
        with pytest.raises(SchemaOutdatedError) as caught:
            await store.ensure_schema()
    assert "s3cret-pw" not in str(caught.value)
    assert "***" in str(caught.value)


async def test_unreachable_database_is_a_store_error_without_password() -> None:
    url = "postgresql+asyncpg://bot:hunter2-secret@127.0.0.1:1/botkit"
    store = ConversationStore(StoreSettings(url=url))
    with pytest.raises(StoreError, match="cannot connect") as caught:
        await store.open()
    assert "hunter2-secret" not in str(caught.value)
    assert not await store.ping()


async def test_closed_store_raises(tmp_path: Path) -> None:
    store = ConversationStore(StoreSettings(url=f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(StoreError, match="not open"):
        await store.get_conversation("web", "k")
    await store.open()
    assert await store.ping()
    await store.close()
    assert not await store.ping()
    await store.close()  # closing twice is harmless
