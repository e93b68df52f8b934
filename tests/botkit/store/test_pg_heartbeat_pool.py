"""The process heartbeat has a connection of its own on PostgreSQL (audit-pg finding 4):
with every pooled connection busy (a burst of customers, slow statements) it is written
at once, instead of waiting up to the pool timeout while peers judge the process dead
and answer its messages a second time."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from botkit.events import utcnow
from botkit.store import ConversationStore, StoreSettings
from botkit.store.records import ProcessRecord

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_the_heartbeat_is_written_while_the_pool_is_exhausted(migrated_db_url: str) -> None:
    async with ConversationStore(StoreSettings(url=migrated_db_url, pool_size=1)) as store:
        process = ProcessRecord(id="p1", host="h", pid=1, started_at=utcnow())
        await store.register_process(process)
        # pool_size 1 and as many again under load: two slow statements hold them all.
        slow = [
            asyncio.ensure_future(store._read(lambda c: c.execute(text("SELECT pg_sleep(2)"))))
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await store.heartbeat("p1")
        assert time.monotonic() - started < 1.0
        await asyncio.gather(*slow)
