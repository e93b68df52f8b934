"""The process heartbeat has a connection of its own on PostgreSQL (audit-pg finding 4):
with every pooled connection busy (a burst of customers, slow statements) it is written
at once, instead of waiting up to the pool timeout while peers judge the process dead
and answer its messages a second time."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from conftest import MakeMessage
from sqlalchemy import text

from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore, StoreSettings, _database, migrate
from botkit.store._runner import Runner, create_runner
from botkit.store.records import ProcessRecord

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_the_heartbeat_is_written_while_the_pool_is_exhausted(migrated_db_url: str) -> None:
    async with ConversationStore(StoreSettings(url=migrated_db_url, pool_size=1)) as store:
        process = ProcessRecord(id="p1", host="h", pid=1, started_at=utcnow())
        await store.register_process(process)
        # pool_size 1 and as many again under load: two slow statements hold them all.
        slow = [
            asyncio.ensure_future(store._read(lambda c: c.execute(text("SELECT pg_sleep(5)"))))
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await store.heartbeat("p1")
        assert time.monotonic() - started < 3.0  # behind the pool: ~4.7 s
        await asyncio.gather(*slow)


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_heartbeat_does_not_end_an_outage_of_the_shared_pool(
    db_url: str, make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    """A locked conversations table fails customers' calls while the heartbeat, on its own
    connection and table, is written: the outage goes on until a pooled call works."""
    await migrate.upgrade(db_url)  # a database of its own: its settings are changed
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    locker = await asyncpg.connect(dsn)
    try:
        name = await locker.fetchval("SELECT current_database()")
        await locker.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '100ms'")
        async with ConversationStore(StoreSettings(url=db_url)) as store:
            process = ProcessRecord(id="p1", host="h", pid=1, started_at=utcnow())
            await store.register_process(process)
            async with locker.transaction():
                await locker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(DatabaseUnavailableError):
                    await store.intake(make_message(), text="hi")
                assert store.outage.down
                caplog.clear()
                for _ in range(3):
                    assert await store.heartbeat("p1")
                    assert store.outage.down
                assert "answers again" not in caplog.text
            await store.intake(make_message(), text="hi")
            assert not store.outage.down
            assert "answers again" in caplog.text
    finally:
        await locker.close()


async def test_open_disposes_the_pool_when_the_heartbeat_runner_cannot_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Runner] = []
    disposed: list[Runner] = []

    def create(url: str, **kwargs: object) -> Runner:
        if made:
            raise OSError("no more")
        runner = create_runner(url, **kwargs)  # type: ignore[arg-type]
        dispose = runner.dispose

        async def recorded() -> None:
            disposed.append(runner)
            await dispose()

        monkeypatch.setattr(runner, "dispose", recorded)
        made.append(runner)
        return runner

    monkeypatch.setattr(_database, "create_runner", create)
    db = _database.Database(StoreSettings(url="postgresql+asyncpg://u:p@127.0.0.1:1/db"))
    with pytest.raises(StoreError, match="no more"):
        await db.open()
    assert disposed == made and db._runner is None
