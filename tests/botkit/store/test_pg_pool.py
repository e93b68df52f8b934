"""PostgreSQL pool: a connection that died is replaced, without a ping per use."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Connection

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
        # pg_terminate_backend(pid, timeout) waits until the backend has exited, so its
        # socket is closed; the driver sees that at the loop's next look at the socket.
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.05)  # that look (the pooled connection is idle meanwhile)


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
    """The counterpart: within the idle threshold there is no ping. A connection the
    server closed meanwhile is still not handed out: the driver saw its socket close."""
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 3600.0)
    pings: list[object] = []
    original = cast(Callable[..., object], PGDialect_asyncpg.do_ping)  # (untyped)

    def counting_ping(self: PGDialect_asyncpg, dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(original(self, dbapi_connection))

    monkeypatch.setattr(PGDialect_asyncpg, "do_ping", counting_ping)
    store = await _store_with_one_connection(pg_migrated_url)
    failed: list[object] = []
    engine = store._runner._engine.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "handle_error", failed.append)
    try:
        pid = await store._read(_backend_pid)
        assert await store._read(_backend_pid) == pid
        await _kill(pg_server_url, pid)
        assert await store._read(_backend_pid) != pid
        assert pings == []
        assert failed == []  # not even a statement that failed and was run again
    finally:
        await store.close()


async def test_a_statement_on_a_connection_killed_meanwhile_is_read_again(
    pg_migrated_url: str, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even the driver has not seen the close yet, the read fails on it, the pool
    drops it, and the read runs again on a new connection (a read changes nothing)."""
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 3600.0)
    monkeypatch.setattr(runner_module, "_closed", lambda _conn: False)
    store = await _store_with_one_connection(pg_migrated_url)
    try:
        pid = await store._read(_backend_pid)
        await _kill(pg_server_url, pid)
        assert await store._read(_backend_pid) != pid
    finally:
        await store.close()


def _tcp_options(conn: Connection) -> tuple[int, int, int]:
    driver = conn.connection.driver_connection
    sock = driver._transport.get_extra_info("socket")  # type: ignore[union-attr]
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    )


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket option")
async def test_the_kernel_gives_up_on_a_server_that_vanished_within_the_dead_peer_time(
    pg_migrated_url: str,
) -> None:
    """What a partition does cannot be made on a shared loopback, so the options that
    end it are checked on the connection itself."""
    store = await _store_with_one_connection(pg_migrated_url)
    try:
        keepalive, user_timeout, idle = await store._read(_tcp_options)
    finally:
        await store.close()
    assert keepalive == 1
    assert user_timeout == runner_module.DEAD_PEER_S * 1000
    assert idle == runner_module.DEAD_PEER_S // 2
