"""Readiness on a read-only PostgreSQL (audit-pg finding 6): a standby after a failover
answers ``SELECT 1`` but refuses every write, so ``ping`` (behind ``/readyz``) says not
ready and a load balancer sends visitors to a replica that can store their messages."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from botkit.store import StoreSettings
from botkit.store._database import Database

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_read_only_database_is_not_ready(migrated_db_url: str) -> None:
    read_only = f"{migrated_db_url}?options={quote('-c default_transaction_read_only=on')}"
    async with Database(StoreSettings(url=read_only)) as db:
        assert not await db.ping()
    async with Database(StoreSettings(url=migrated_db_url)) as db:
        assert await db.ping()


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_sqlite_is_ready_when_it_answers(migrated_db_url: str) -> None:
    async with Database(StoreSettings(url=migrated_db_url)) as db:
        assert await db.ping()
