"""PostgreSQL pool: a connection that died while idle is replaced, without a ping per use."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import Connection

from botkit.errors import StoreError
from botkit.store import ConversationStore, StoreSettings
from botkit.store import _runner as runner_module

pytestmark = pytest.mark.postgres


def _backend_pid(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


async def _kill(admin_url: str, pid: int) -> None:
    """What a server restart or an idle timeout does to a pooled connection."""
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def _store_with_one_connection(url: str) -> ConversationStore:
    store = ConversationStore(StoreSettings(url=url, pool_size=1))
    await store.open()
    return store


async def test_an_idle_connection_killed_by_the_server_is_replaced(
    pg_migrated_url: str, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 0.0)  # every checkout counts as idle
    store = await _store_with_one_connection(pg_migrated_url)
    try:
        pid = await store._read(_backend_pid)
        await _kill(pg_server_url, pid)
        assert await store._read(_backend_pid) != pid  # pinged, found dead, reconnected
        assert await store.ping()
    finally:
        await store.close()


async def test_a_connection_reused_at_once_is_not_pinged(
    pg_migrated_url: str, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart: within the idle threshold there is no ping, so a connection killed
    in between fails the next statement (as one in use would) with a StoreError; the pool
    then replaces it."""
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 3600.0)
    store = await _store_with_one_connection(pg_migrated_url)
    try:
        pid = await store._read(_backend_pid)
        await _kill(pg_server_url, pid)
        with pytest.raises(StoreError, match="database read failed"):
            await store._read(_backend_pid)
        assert await store._read(_backend_pid) != pid
    finally:
        await store.close()
