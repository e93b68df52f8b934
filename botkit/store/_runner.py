"""Where store transactions run: a thread for SQLite, the event loop for PostgreSQL.

Every transaction is a plain function of a synchronous SQLAlchemy ``Connection``; a runner
executes it and hands back the result to async callers.

* PostgreSQL: an asyncpg ``AsyncEngine``; the function runs through
  ``AsyncConnection.run_sync`` (each statement awaits the network on the event loop).
* SQLite: the standard ``sqlite3`` driver in worker threads, one whole transaction per
  thread hop. aiosqlite, by contrast, pays about four thread hops per statement (cursor,
  execute, fetch, close); measured here, a 5-statement write transaction took ~1.0 ms
  through SQLAlchemy + aiosqlite and ~0.2 ms as one hop with sqlite3. All writes of a
  process go through one writer thread, which also serializes them (first come, first
  served, no busy-waiting); ``BEGIN IMMEDIATE`` and the busy timeout order writers
  across processes. Readers get a few threads of their own (WAL lets them run while a
  write is in progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from botkit.store._driver import require_postgres_driver
from botkit.store._group_commit import GroupCommitWriter
from botkit.store._pg_params import connect_args

__all__ = [
    "Runner",
    "create_runner",
    "describe_error",
    "detect_dead_peers",
    "install_sqlite_hooks",
    "is_memory_sqlite",
    "ping_when_idle",
]

log = logging.getLogger("botkit.store")
T = TypeVar("T")
_SQLITE_READERS = 3


class Runner(Protocol):
    """Runs synchronous transaction functions for async callers."""

    @property
    def url(self) -> URL: ...

    @property
    def dialect(self) -> str: ...

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a connection; its implicit transaction is rolled back after."""

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction, committed when it returns normally."""

    async def dispose(self) -> None:
        """Close every connection (and thread)."""


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a database failure, without SQL text or parameters."""
    orig = getattr(exc, "orig", None)
    reason = orig if isinstance(orig, BaseException) else exc
    lines = str(reason).strip().splitlines()
    return f"{type(reason).__name__}: {lines[0] if lines else ''}"[:500]


def is_memory_sqlite(url: URL) -> bool:
    """True for ``sqlite://`` and ``:memory:`` URLs (one connection, no file)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_runner(
    url: str | URL,
    *,
    pool_size: int = 5,
    busy_timeout_ms: int = 5000,
    echo: bool = False,
    foreign_keys: bool = True,
    pooled: bool = True,
    max_overflow: int | None = None,
) -> Runner:
    """Make the runner for a database URL.

    Args:
        url: sqlite+aiosqlite / sqlite / postgresql+asyncpg URL.
        pool_size: pooled PostgreSQL connections.
        busy_timeout_ms: how long SQLite waits for another process's write lock.
        echo: log SQL statements (at INFO on the ``sqlalchemy.engine`` logger, through
            the application's handlers; parameters are never logged).
        foreign_keys: enforce SQLite foreign keys. Migrations turn them off, as Alembic
            advises, because batch operations rebuild tables that others reference.
        pooled: False closes connections after use (one-shot work: migrations, CLI).
        max_overflow: PostgreSQL connections opened beyond ``pool_size`` under load,
            closed again when returned (default: ``pool_size`` more).

    Raises:
        StoreError: a PostgreSQL URL, and asyncpg is not installed.
    """
    if echo:
        # Through logging, not SQLAlchemy's echo=True: that adds its own plain-text
        # handler on stdout, so every statement was printed twice (once outside JSON
        # lines, and into `botkit chat`'s conversation).
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")  # the one async driver we use
    if parsed.get_backend_name() == "sqlite":
        return _SqliteRunner(parsed, busy_timeout_ms, foreign_keys)
    require_postgres_driver()  # (a StoreError naming the extra, not SQLAlchemy's traceback)
    # hide_parameters: customer text must not reach logs through SQL error messages.
    # A server that does not answer at all (a host gone, packets dropped) fails a new
    # connection after CONNECT_TIMEOUT_S, not asyncpg's default 60 s: intake and readiness
    # then answer within the channels' patience.
    # libpq's names in the query (sslmode=...) become asyncpg's arguments: left in the
    # URL, SQLAlchemy would pass them to asyncpg.connect(), which refuses them.
    translated, libpq_names = connect_args(parsed.query)
    parsed = parsed.difference_update_query(libpq_names)
    kwargs: dict[str, Any] = {
        "hide_parameters": True,
        "connect_args": {"timeout": CONNECT_TIMEOUT_S, **translated},
    }
    if pooled:
        overflow = pool_size if max_overflow is None else max_overflow
        kwargs.update(pool_size=pool_size, max_overflow=overflow)
    else:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(parsed, **kwargs)
    detect_dead_peers(engine.sync_engine)
    if pooled:
        ping_when_idle(engine.sync_engine, IDLE_PING_S)
    return _AsyncRunner(engine)


# A pooled connection idle longer than this is pinged before use (see ping_when_idle).
IDLE_PING_S = 1.0
# Seconds to open a PostgreSQL connection before giving up.
CONNECT_TIMEOUT_S = 10.0


# Seconds a PostgreSQL connection may leave sent data unacknowledged, or stay silent to
# keepalive probes, before the kernel closes it (see detect_dead_peers).
DEAD_PEER_S = 30


def detect_dead_peers(engine: Engine) -> None:
    """Make the kernel close a connection whose server vanished without closing it.

    A failover that moves the server's address, or a network partition, leaves no one
    to close the connection: a statement on it waits until the kernel stops
    retransmitting (about 15 minutes on Linux), holding its pooled connection (and a
    reply's conversation) all that time. ``TCP_USER_TIMEOUT`` ends it after
    ``DEAD_PEER_S`` of unacknowledged data, keepalives find an idle one as soon. Neither
    limits a slow query: a live server acknowledges what it is sent while it computes.
    (Options this platform lacks are skipped; a Unix socket has none of them.)
    """
    options = [
        ("TCP_KEEPIDLE", DEAD_PEER_S // 2),
        ("TCP_KEEPINTVL", DEAD_PEER_S // 6),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", DEAD_PEER_S * 1000),
    ]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        sock = _socket_of(dbapi_connection)
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in options:
                option = getattr(socket, name, None)
                if option is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _socket_of(dbapi_connection: Any) -> Any:
    """The socket under an asyncpg connection (None when it cannot be reached)."""
    transport = getattr(getattr(dbapi_connection, "driver_connection", None), "_transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    return get_extra_info("socket") if callable(get_extra_info) else None


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before use only when it sat idle more than ``idle_s``.

    SQLAlchemy's ``pool_pre_ping`` pings on *every* checkout: one extra network round
    trip per transaction, ~15% of a message's store cost on PostgreSQL (measured here).
    A connection that died while idle (server restart, idle timeout, a proxy) is what
    the ping is for; one that was returned a moment ago is as alive as one in use, so
    under load, when connections are reused within milliseconds, none is pinged. A dead
    one is replaced: raising ``DisconnectionError`` in the checkout event makes the pool
    discard it and check out another (SQLAlchemy's documented recipe).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _closed(dbapi_connection):
            # The server closed it (a restart, pg_terminate_backend) and the driver saw
            # the socket close: no ping needed, and none skipped for being recent (a
            # restart within ``idle_s`` otherwise failed the next call on every pooled
            # connection).
            raise DisconnectionError("the server closed the pooled connection")
        if time.monotonic() - record.info.get("idle_since", 0.0) <= idle_s:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure to answer: do not hand this one out
            log.info("a pooled database connection is gone (%s); reconnecting", describe_error(exc))
            alive = False
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")


def _closed(dbapi_connection: Any) -> bool:
    """Whether the driver knows the connection is closed (asyncpg's ``is_closed``, no
    network round trip)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


class _AsyncRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def url(self) -> URL:
        return self._engine.url

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def read(self, fn: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(fn)

    async def dispose(self) -> None:
        await self._engine.dispose()


class _SqliteRunner:
    def __init__(self, url: URL, busy_timeout_ms: int, foreign_keys: bool) -> None:
        self._url = url
        memory = is_memory_sqlite(url)
        sync_url = url.set(drivername="sqlite+pysqlite")
        # check_same_thread off: pooled connections move between our worker threads
        # (never used by two at once).
        kwargs: dict[str, Any] = {
            "hide_parameters": True,
            "connect_args": {"check_same_thread": False},
        }
        if memory:
            kwargs["poolclass"] = StaticPool  # the database lives in this one connection
        else:
            kwargs.update(pool_size=_SQLITE_READERS + 1, max_overflow=0)
            if url.database and not _is_uri(url):  # a URI names its file its own way
                Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                _create_private(url.database)
        self._engine = create_engine(sync_url, **kwargs)
        install_sqlite_hooks(self._engine, memory, busy_timeout_ms, foreign_keys)
        self._memory = memory
        self._writer = GroupCommitWriter(self._engine.execution_options(sqlite_begin="IMMEDIATE"))
        # One connection in memory: reads queue in the writer thread too.
        self._readers = (
            None
            if memory
            else ThreadPoolExecutor(_SQLITE_READERS, thread_name_prefix="botkit-sqlite-r")
        )

    @property
    def url(self) -> URL:
        return self._url

    @property
    def dialect(self) -> str:
        return "sqlite"

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self._engine.connect() as conn:
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._readers is None:  # in memory: the writer's one connection
            return await self._writer.submit(fn)
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        # If the awaiting task is cancelled, the transaction still completes in the
        # thread; callers see the outcome on their next read (intake is idempotent).
        return await self._writer.submit(fn)

    async def dispose(self) -> None:
        # Queued in the writer thread: runs after every write already submitted.
        try:
            await self._writer.call(self._engine.dispose)
        finally:  # also when the caller is cancelled meanwhile: never leak the thread
            self._writer.stop()
            if self._readers is not None:
                self._readers.shutdown(wait=False)


def _is_uri(url: URL) -> bool:
    """Whether sqlite3 opens ``url.database`` as a ``file:`` URI (``?uri=true``), whose
    query says how (``mode=ro``...)."""
    return str(url.query.get("uri", "")).lower() in ("true", "1", "yes", "on")


def _create_private(database: str) -> None:
    """Create the SQLite file ``database`` empty, readable and writable by its owner
    only, unless it is there: it will hold customers' conversations and the
    ``session_keys`` signing key, and SQLite would make it with the umask (-rw-r--r--
    under the common 022). SQLite gives the -wal and -shm files it adds beside it the
    database file's mode. A file already there keeps the mode it has (the operator's
    choice); an empty file is a valid, empty database to SQLite.
    """
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        # There already (perhaps made by another process just now), or it cannot be
        # made: SQLite's own open then says why, as it did before.
        return
    try:
        os.fchmod(fd, 0o600)  # exactly, whatever the umask took away
    finally:
        os.close(fd)


def _enable_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch the file to WAL (a lasting property of the file, so normally only its first
    connection ever does). The switch needs an exclusive lock and SQLite reports "database
    is locked" at once, without the busy handler, when two connections race to do it on a
    new file; so it is retried until the busy timeout."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if not mode or str(mode[0]).lower() != "wal":  # e.g. a file system without mmap
            log.warning("SQLite stays in journal mode %s: readers will wait for writers", mode)
        return


def install_sqlite_hooks(
    engine: Engine, memory: bool, busy_timeout_ms: int, foreign_keys: bool
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3's own implicit BEGIN is turned off; _on_begin emits ours, which also
        # makes DDL transactional (a failed migration leaves the file as it was).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if not memory:
                _enable_wal(cursor, busy_timeout_ms)
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            # WAL + NORMAL: a commit survives an application crash; an OS crash or power
            # cut can lose the last transactions (SQLite's documented trade-off). FULL
            # would fsync on every commit.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front. A deferred transaction that reads and
        # then writes fails at once with SQLITE_BUSY (no busy wait) when another process
        # committed in between; an immediate one waits its turn.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
