"""Lifecycle, schema check, error translation and retries under ``ConversationStore``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import partial
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from botkit.errors import SchemaOutdatedError, StoreError
from botkit.store._outage import DatabaseUnavailableError, OutageLog, outage_reason, sqlstate
from botkit.store._runner import Runner, create_runner, describe_error, is_memory_sqlite
from botkit.store.settings import StoreSettings

__all__ = ["UPGRADE_COMMAND", "Database", "one_call"]

log = logging.getLogger("botkit.store")
T = TypeVar("T")

UPGRADE_COMMAND = "botkit db upgrade -c FILE"
_ATTEMPTS = 4
# PostgreSQL serialization failure and deadlock: the transaction can simply be retried.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
# How many times in a row the server may cancel one transaction (SQLSTATE 57014: the
# role's or database's statement_timeout, or a cancel request) within one call of a
# caller that tries again (``one_call``) before it is a plain failure rather than an
# outage. A lock held a moment too long is waited
# for (as an outage: the callers try again, see botkit/_replies.py); a statement that
# exceeds the timeout every time (a query made slow by one conversation's data) would
# otherwise be tried until shutdown, holding the conversation and a connection each
# time, and keep the whole store reported unavailable. A lock wait cut by lock_timeout
# (55P03) is an outage however often it recurs: the lock is gone once its holder ends.
STATEMENT_CANCELS = 3
_CANCELLED = "57014"
# The cancels counted for one logical call of a caller (see ``one_call``).
_CALL_CANCELS: ContextVar[Counter[object] | None] = ContextVar("botkit_store_cancels", default=None)


@contextlib.contextmanager
def one_call(counts: Counter[object] | None = None) -> Iterator[None]:
    """Within it, the store calls of this task and of the tasks it starts are one call
    for ``STATEMENT_CANCELS``: a caller that tries its work again while the database is
    unavailable (a reply, one kept message of the outage spool, the recovery passes)
    wraps the whole loop, since the tries may run in new tasks (the reply's write is
    shielded in a task of its own per try).

    Outside one, nothing is counted: a 57014 is an outage each time. A count per task
    built up across unrelated calls of a long-lived task (the spool storing message
    after message, each cancelled once under a migration) and gave up the next one at
    its first cancel.

    Args:
        counts: the count to go on with, kept by a caller whose tries are spread over
            calls of its own (the recovery passes); a new one when None. Tasks started
            within the block share it, so such a caller wraps its store call only.
    """
    token = _CALL_CANCELS.set(Counter() if counts is None else counts)
    try:
        yield
    finally:
        _CALL_CANCELS.reset(token)


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _select_one(conn: Connection) -> None:
    conn.exec_driver_sql("SELECT 1")


# A standby (a failover landed the pool on the old primary, now read-only) answers
# SELECT 1 but refuses every write: the bot would take traffic only to refuse it. One
# round trip still; transaction_read_only also covers default_transaction_read_only.
_PG_WRITABLE = "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"


def _writable(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        _select_one(conn)  # a locked SQLite file still serves reads: ready
        return True
    return bool(conn.exec_driver_sql(_PG_WRITABLE).scalar())


class Database:
    """Owns the runner; runs reads and retried write transactions, raising StoreError."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self._settings = settings or StoreSettings()
        self._runner: Runner | None = None
        # PostgreSQL: one connection of its own for the process heartbeat (see
        # _write's ``heartbeat``); None on SQLite, whose writes all queue in one thread.
        self._beat_runner: Runner | None = None
        self._outage = OutageLog(self._settings.safe_url)

    @property
    def settings(self) -> StoreSettings:
        """The settings the store was made with."""
        return self._settings

    @property
    def outage(self) -> OutageLog:
        """The database's availability as its last calls saw it (for the metrics)."""
        return self._outage

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._settings.dialect

    @property
    def in_memory(self) -> bool:
        """True for an in-memory SQLite database (gone when the store closes)."""
        return is_memory_sqlite(self._settings.sqlalchemy_url)

    async def open(self) -> None:
        """Connect and check that the database answers.

        Raises:
            StoreError: the database cannot be reached.
        """
        if self._runner is not None:
            return
        s = self._settings
        try:  # (creating the runner makes a SQLite file's directory: that can fail too)
            self._runner = create_runner(
                s.url,
                pool_size=s.pool_size,
                busy_timeout_ms=s.sqlite_busy_timeout_ms,
                echo=s.echo_sql,
            )
            if self._runner.dialect == "postgresql":
                # (no connection is opened until the first heartbeat)
                self._beat_runner = create_runner(s.url, pool_size=1, max_overflow=0)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            await self.close()  # the first runner, when the second one failed
            raise StoreError(self._cannot_connect(exc)) from exc
        except BaseException:
            await self.close()
            raise
        try:
            await self._runner.read(_select_one)
        except (SQLAlchemyError, OSError) as exc:
            await self.close()
            # A server still starting, restarting or unreachable may answer in a while
            # (``Bot.start`` waits for it): told apart from a wrong password or name.
            reason = outage_reason(exc)
            if reason is None:
                raise StoreError(self._cannot_connect(exc)) from exc
            raise DatabaseUnavailableError(
                f"{self._cannot_connect(exc)} ({reason})", reason=reason.name
            ) from exc
        log.info("conversation store open at %s", s.safe_url)

    def _cannot_connect(self, exc: BaseException) -> str:
        return f"cannot connect to the database at {self._settings.safe_url}: {describe_error(exc)}"

    async def close(self) -> None:
        """Close every connection. The store can be opened again."""
        runner, self._runner = self._runner, None
        beat_runner, self._beat_runner = self._beat_runner, None
        try:
            if runner is not None:
                await runner.dispose()
        finally:
            if beat_runner is not None:
                await beat_runner.dispose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        """True when the database answers a trivial query and, on PostgreSQL, takes
        writes (not a hot standby, not read-only): for readiness checks."""
        try:
            return await self._read(_writable)
        except StoreError:
            return False

    async def ensure_schema(self, auto_upgrade: bool | None = None) -> None:
        """Make sure the schema is current before the bot uses the store.

        Args:
            auto_upgrade: upgrade a SQLite database that is behind (default: the
                ``auto_migrate`` setting). PostgreSQL is never upgraded here.

        Raises:
            SchemaOutdatedError: the schema is missing or behind and is not upgraded here;
                the message names ``botkit db upgrade -c FILE``.
            StoreError: the database is newer than this botkit, or unreachable.
        """
        from botkit.store import migrate  # Alembic is only needed here, once at start

        runner = self._require()
        if auto_upgrade is None:
            auto_upgrade = self._settings.auto_migrate
        head = migrate.head()
        current = await migrate.current(runner)
        if current == head:
            return
        where = self._settings.safe_url
        if current is not None and not migrate.is_known(current):
            raise StoreError(
                f"the database at {where} has schema revision {current!r}, which this "
                f"version of botkit does not know (it expects {head!r}): upgrade botkit"
            )
        if self.dialect == "sqlite" and auto_upgrade:
            log.info("upgrading the SQLite schema from %s to %s", current or "empty", head)
            # A file gets its own connection (foreign keys off during migrations); an
            # in-memory database exists only on the store's single connection.
            await migrate.upgrade(runner if self.in_memory else self._settings.url)
            return
        state = "has no botkit schema" if current is None else f"is at revision {current!r}"
        raise SchemaOutdatedError(
            f"the database at {where} {state}, but this version of botkit needs schema "
            f"revision {head!r}: run `{UPGRADE_COMMAND}` (FILE is your config file)"
        )

    def _require(self) -> Runner:
        if self._runner is None:
            raise StoreError("the conversation store is not open; call open() first")
        return self._runner

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        runner = self._require()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await runner.read(fn)
            except (SQLAlchemyError, OSError, OverflowError) as exc:
                # A read on a connection that died (a server restart within the idle-ping
                # window) is simply read again, on a new one: the pool dropped them all.
                if attempt == 1 and _lost_connection(exc):
                    continue
                raise self._failure("read", exc, maybe_committed=False, fn=fn) from exc
            self._outage.succeeded(write=False)
            self._not_cancelled(fn)
            return result

    async def _write(self, fn: Callable[[Connection], T], *, heartbeat: bool = False) -> T:
        """Run ``fn`` in one write transaction, retrying transient conflicts, and once a
        transaction whose connection turned out dead before its work was done.

        ``heartbeat``: on the process heartbeat's own connection (PostgreSQL). In the
        shared pool it waited behind customer traffic when every connection was busy
        (a burst, slow statements): up to the 30 s pool timeout, as long as peers wait
        before they judge a process dead and answer its messages a second time.
        """
        runner = self._require()
        shared = not (heartbeat and self._beat_runner is not None)
        if not shared:
            runner = self._beat_runner or runner
        attempt = 0
        lost_once = False
        while True:
            attempt += 1
            done = [False]
            try:
                result = await runner.write(_marking(fn, done))
            except DBAPIError as exc:
                if attempt < _ATTEMPTS and _sqlstate(exc) in _TRANSIENT_SQLSTATES:
                    log.debug("retrying a transaction after SQLSTATE %s", _sqlstate(exc))
                    await asyncio.sleep(0.005 * attempt)
                    continue
                # Lost before ``fn`` returned: nothing was committed, so it is safe to run
                # it again (after its COMMIT was sent, the outcome is unknown: not retried).
                if not lost_once and not done[0] and _lost_connection(exc):
                    lost_once = True
                    continue
                raise self._failure(
                    "write", exc, maybe_committed=done[0], shared=shared, fn=fn
                ) from exc
            except (SQLAlchemyError, OSError, OverflowError) as exc:
                # OverflowError: sqlite3 refuses ints beyond 64 bits (an id from outside).
                raise self._failure(
                    "write", exc, maybe_committed=done[0], shared=shared, fn=fn
                ) from exc
            self._outage.succeeded(write=True, shared=shared)
            self._not_cancelled(fn)
            return result

    def _failure(
        self,
        what: str,
        exc: BaseException,
        *,
        maybe_committed: bool,
        shared: bool = True,
        fn: Callable[..., object] | None = None,
    ) -> StoreError:
        """The StoreError for a failed call; an outage is logged (throttled) and raised as
        ``DatabaseUnavailableError``."""
        detail = describe_error(exc)
        reason = outage_reason(exc)
        if reason is None:
            return StoreError(f"database {what} failed: {detail}")
        if fn is not None and sqlstate(exc) == _CANCELLED and self._cancelled_too_often(fn):
            return StoreError(
                f"database {what} failed: the server cancelled the same statement "
                f"{STATEMENT_CANCELS} times in a row (statement_timeout, or a cancel "
                f"request); given up, as it would be again: {detail}"
            )
        self._outage.failed(reason, detail, write=what == "write", shared=shared)
        return DatabaseUnavailableError(
            f"database {what} failed: {reason}: {detail}",
            maybe_committed=maybe_committed,
            reason=reason.name,
        )

    def _cancelled_too_often(self, fn: Callable[..., object]) -> bool:
        """Count a cancel of ``fn`` in this call (``one_call``; outside one nothing is
        counted); True once it reached STATEMENT_CANCELS."""
        counts = _CALL_CANCELS.get()
        if counts is None:
            return False
        counts[_site(fn)] += 1
        return counts[_site(fn)] >= STATEMENT_CANCELS

    def _not_cancelled(self, fn: Callable[..., object]) -> None:
        """``fn`` went through: its cancels in this call are forgotten."""
        counts = _CALL_CANCELS.get()
        if counts:
            counts.pop(_site(fn), None)


def _site(fn: Callable[..., object]) -> object:
    """Where a transaction function is defined (its code object): the same for each call
    of one store method, whatever the closure holds."""
    while isinstance(fn, partial):
        fn = fn.func
    return getattr(fn, "__code__", fn)


def _lost_connection(exc: BaseException) -> bool:
    """A pooled connection that was found dead (SQLAlchemy then invalidates the pool)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _marking(fn: Callable[[Connection], T], done: list[bool]) -> Callable[[Connection], T]:
    """``fn`` that sets ``done[0]`` when it returns (its transaction's COMMIT is next)."""

    def run(conn: Connection) -> T:
        done[0] = False  # (SQLite's group commit may run a write twice)
        result = fn(conn)
        done[0] = True
        return result

    return run
