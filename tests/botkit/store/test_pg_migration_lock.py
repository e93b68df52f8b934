"""`botkit db upgrade` behind a long transaction (audit-pg finding 3): it gives the table
lock up after ``migrate.LOCK_TIMEOUT_MS`` instead of queueing the running bots' every
statement behind its ACCESS EXCLUSIVE wait, says what blocks it, changes nothing, and
`db upgrade` tries again until it gets through."""

from __future__ import annotations

import asyncio
import threading
import time
from functools import partial
from pathlib import Path

import asyncpg
import pytest
from alembic.config import Config

from botkit import _store_at_start
from botkit.cli import main
from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.store import migrate

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_upgrade_behind_a_long_transaction_gives_up_without_stalling_others(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT_MS", 300)
    await migrate.upgrade(db_url, "0003")  # 0004 alters conversations
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    reader, other = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        reading = reader.transaction()
        await reading.start()
        await reader.fetch("SELECT id FROM conversations LIMIT 1")  # holds ACCESS SHARE
        upgrading = asyncio.ensure_future(migrate.upgrade(db_url))
        await asyncio.sleep(0.1)  # the migration waits for its lock now
        # A bot's statement meanwhile is not queued behind the migration for long.
        started = time.monotonic()
        await other.fetchval("SELECT count(*) FROM conversations", timeout=5)
        assert time.monotonic() - started < 4.0  # queued behind it: until fetchval's 5 s
        with pytest.raises(DatabaseUnavailableError, match="pg_stat_activity") as caught:
            async with asyncio.timeout(10):
                await upgrading
        assert caught.value.reason == "timeout"
        assert await migrate.current(db_url) == "0003"  # nothing changed
        await reading.rollback()
        await migrate.upgrade(db_url)
        assert await migrate.current(db_url) == migrate.head()
    finally:
        await reader.close()
        await other.close()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_db_upgrade_tries_again_until_the_transaction_is_over(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT_MS", 200)
    monkeypatch.setattr(_store_at_start, "RETRY_S", (0.1, 0.2))
    asyncio.run(migrate.upgrade(db_url, "0003"))
    config = tmp_path / "bot.toml"
    config.write_text(f'[store]\nurl = "{db_url}"\n', encoding="utf-8")
    holding = threading.Event()

    def hold_for_a_while() -> None:
        async def hold() -> None:
            conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                async with conn.transaction():
                    await conn.fetch("SELECT id FROM conversations LIMIT 1")
                    holding.set()
                    await asyncio.sleep(1.5)
            finally:
                await conn.close()

        asyncio.run(hold())

    holder = threading.Thread(target=hold_for_a_while)
    holder.start()
    try:
        assert holding.wait(10)
        assert main(["db", "upgrade", "-c", str(config)]) == 0
    finally:
        holder.join()
    err = capfd.readouterr().err
    assert "waiting for the database: " in err and "lock_timeout" in err
    assert asyncio.run(migrate.current(db_url)) == migrate.head()


async def _alter_database(db_url: str, setting: str) -> None:
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{name}" SET {setting}')
    finally:
        await conn.close()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_database_statement_timeout_does_not_cut_a_migration(db_url: str) -> None:
    """The bots' statement_timeout and lock_timeout (set on the database or role) do not
    apply to a migration: a slow one runs through, and the wait for another upgrade's
    advisory lock is a wait, not a lock_timeout reported as a table lock."""
    await _alter_database(db_url, "statement_timeout = '150ms'")
    await _alter_database(db_url, "lock_timeout = '100ms'")

    def slow(cfg: Config, revision: str) -> None:
        cfg.attributes["connection"].exec_driver_sql("SELECT pg_sleep(0.4)")

    await migrate._run(db_url, partial(migrate._run_command, fn=slow, revision="head"), write=True)
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    other = await asyncpg.connect(dsn)
    try:
        await other.execute("SET statement_timeout = 0")
        async with other.transaction():  # another upgrade, for a while
            await other.execute(f"SELECT pg_advisory_xact_lock({migrate._PG_LOCK_ID})")
            upgrading = asyncio.ensure_future(migrate.upgrade(db_url))
            await asyncio.sleep(0.5)
            assert not upgrading.done()
        async with asyncio.timeout(30):
            await upgrading
    finally:
        await other.close()
    assert await migrate.current(db_url) == migrate.head()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_cancelled_migration_is_not_reported_as_a_lock_wait(db_url: str) -> None:
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    started = asyncio.Event()

    def waits(cfg: Config, revision: str) -> None:
        connection = cfg.attributes["connection"]
        connection.exec_driver_sql("SELECT set_config('application_name', 'cancel-me', true)")
        connection.exec_driver_sql("SELECT pg_sleep(10)")

    async def cancel() -> None:
        admin = await asyncpg.connect(dsn)
        try:
            for _ in range(200):
                if await admin.fetchval(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'cancel-me' AND state = 'active' "
                    "AND query LIKE '%pg_sleep(10)%'"
                ):
                    started.set()
                    return
                await asyncio.sleep(0.05)
        finally:
            await admin.close()

    canceller = asyncio.ensure_future(cancel())
    with pytest.raises(StoreError, match="cancelled by the server") as caught:
        async with asyncio.timeout(15):
            await migrate._run(
                db_url, partial(migrate._run_command, fn=waits, revision="head"), write=True
            )
    await canceller
    assert started.is_set()
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert "lock" not in str(caught.value)
