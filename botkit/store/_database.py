"""Lifecycle, error translation and retries under ``ConversationStore``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from botkit.errors import StoreError
from botkit.store._runner import Runner, create_runner, is_memory_sqlite
from botkit.store.settings import StoreSettings

__all__ = ["Database", "describe_error"]

log = logging.getLogger("botkit.store")
T = TypeVar("T")

_ATTEMPTS = 4
# PostgreSQL serialization failure and deadlock: the transaction can simply be retried.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a database failure, without SQL text or parameters."""
    orig = getattr(exc, "orig", None)
    reason = orig if isinstance(orig, BaseException) else exc
    lines = str(reason).strip().splitlines()
    return f"{type(reason).__name__}: {lines[0] if lines else ''}"[:500]


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _select_one(conn: Connection) -> None:
    conn.exec_driver_sql("SELECT 1")


class Database:
    """Owns the runner; runs reads and retried write transactions, raising StoreError."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self._settings = settings or StoreSettings()
        self._runner: Runner | None = None

    @property
    def settings(self) -> StoreSettings:
        """The settings the store was made with."""
        return self._settings

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
        self._runner = create_runner(
            s.url, pool_size=s.pool_size, busy_timeout_ms=s.sqlite_busy_timeout_ms, echo=s.echo_sql
        )
        try:
            await self._runner.read(_select_one)
        except (SQLAlchemyError, OSError) as exc:
            await self.close()
            raise StoreError(
                f"cannot connect to the database at {s.safe_url}: {describe_error(exc)}"
            ) from exc
        log.info("conversation store open at %s", s.safe_url)

    async def close(self) -> None:
        """Close every connection. The store can be opened again."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.dispose()

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
        """True when the database answers a trivial query (for readiness checks)."""
        try:
            await self._read(_select_one)
        except StoreError:
            return False
        return True

    def _require(self) -> Runner:
        if self._runner is None:
            raise StoreError("the conversation store is not open; call open() first")
        return self._runner

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        runner = self._require()
        try:
            return await runner.read(fn)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database read failed: {describe_error(exc)}") from exc

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction, retrying transient conflicts."""
        runner = self._require()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await runner.write(fn)
            except DBAPIError as exc:
                if attempt < _ATTEMPTS and _sqlstate(exc) in _TRANSIENT_SQLSTATES:
                    log.debug("retrying a transaction after SQLSTATE %s", _sqlstate(exc))
                    await asyncio.sleep(0.005 * attempt)
                    continue
                raise StoreError(f"database write failed: {describe_error(exc)}") from exc
            except (SQLAlchemyError, OSError) as exc:
                raise StoreError(f"database write failed: {describe_error(exc)}") from exc
