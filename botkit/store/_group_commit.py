"""One writer thread that commits the SQLite writes queued meanwhile together.

SQLite allows one writer at a time, and a transaction's fixed cost (BEGIN IMMEDIATE, the
commit, SQLAlchemy's connection checkout) is most of a small write: measured here, ~1 ms
per message turn across its two transactions. Under load, writes queue while one runs;
the next transaction takes every queued write (up to ``max_batch``) and commits them
together. Callers hear the outcome only after the commit, so a success is as durable as
with one transaction per write. With no queue, a write runs alone exactly as before.

A write that raises must not take the others down with it. Writes almost never raise, so
a batch first runs without savepoints (a SAVEPOINT and its RELEASE cost more Python time
through SQLAlchemy than a typical write); if one raises, the whole transaction is rolled
back and the batch runs again with each write inside its own SAVEPOINT, so that the
failing one is rolled back alone. A write function may therefore run twice: it must only
touch the database through its connection (every store write is such a function).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from botkit.errors import StoreError

__all__ = ["GroupCommitWriter"]

T = TypeVar("T")
_log = logging.getLogger("botkit.store")


@dataclass
class _Job(Generic[T]):
    fn: Callable[[Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None
    # Run outside any transaction (e.g. disposing the engine), never batched.
    bare: bool = False


_STOP = object()


class GroupCommitWriter:
    """Runs write functions in one thread, committing queued ones in one transaction."""

    def __init__(self, engine: Engine, *, max_batch: int = 64, name: str = "botkit-sqlite-w"):
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Makes "not closed, then queued" atomic, so no job can land behind _STOP.
        self._state = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction (shared with other queued writes)."""
        return await self._enqueue(fn, bare=False)

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (no transaction) in the writer thread, after queued writes."""
        return await self._enqueue(lambda _conn: fn(), bare=True)

    async def _enqueue(self, fn: Callable[[Connection], T], *, bare: bool) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._state:
            # After stop() nothing would ever run it: fail now instead of hanging.
            if self._closed:
                raise StoreError("the conversation store is closed")
            self._queue.put(_Job(fn, future, loop, bare=bare))
        # If the awaiting task is cancelled, the write still completes in the thread.
        return await asyncio.shield(future)

    def stop(self) -> None:
        """End the thread after the jobs already queued; later jobs raise StoreError."""
        with self._state:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)

    def _run(self) -> None:
        pending: Any = None  # an item taken off the queue that ended the last batch
        while True:
            first = pending if pending is not None else self._queue.get()
            pending = None
            if first is _STOP:  # the last item: _closed keeps later jobs out
                return
            if first.bare:
                self._call(first)
                continue
            batch: list[_Job[Any]] = [first]
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP or job.bare:
                    pending = job
                    break
                batch.append(job)
            self._commit(batch)

    def _call(self, job: _Job[Any]) -> None:
        try:
            job.result = job.fn(None)  # type: ignore[arg-type]  # bare: no connection
        except BaseException as exc:
            job.error = _as_error(exc)
        _notify([job])

    def _commit(self, batch: list[_Job[Any]]) -> None:
        if len(batch) == 1 or not self._commit_together(batch):
            self._commit_isolated(batch)
        _notify(batch)

    def _commit_together(self, batch: list[_Job[Any]]) -> bool:
        """Run the batch in one transaction without savepoints; False when a write (or
        the commit) raised an ``Exception`` and nothing of the batch was stored."""
        try:
            with self._engine.begin() as conn:
                for job in batch:
                    job.result = job.fn(conn)
        except Exception:
            for job in batch:
                job.result = None
            return False
        except BaseException as exc:  # e.g. KeyboardInterrupt in this thread: all fail
            for job in batch:
                job.result, job.error = None, _as_error(exc)
        return True

    def _commit_isolated(self, batch: list[_Job[Any]]) -> None:
        """Run the batch in one transaction, each write in a savepoint of its own."""
        try:
            with self._engine.begin() as conn:
                if len(batch) == 1:
                    job = batch[0]
                    job.result = job.fn(conn)  # raises: the transaction rolls back
                else:
                    for job in batch:
                        try:
                            with conn.begin_nested():
                                job.result = job.fn(conn)
                        except Exception as exc:  # rolled back to its savepoint alone
                            job.error = exc
                            if not _in_transaction(conn):
                                # SQLite rolled back the whole transaction (disk full,
                                # I/O error): the writes before are gone, and a SAVEPOINT
                                # now would start (and its RELEASE commit) one of its own.
                                raise StoreError(
                                    "the write was rolled back with its batch"
                                ) from exc
        except BaseException as exc:  # the commit (or the only job) failed: all fail
            for job in batch:
                job.error = job.error or _as_error(exc)


def _in_transaction(conn: Connection) -> bool:
    dbapi = conn.connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", True))


def _as_error(exc: BaseException) -> BaseException:
    """What the callers hear: an ``Exception`` as is, but a KeyboardInterrupt or
    SystemExit raised in this thread becomes a StoreError: set on an asyncio future it
    would escape every awaiting task and stop the caller's event loop (and a batch
    shares it among unrelated writes)."""
    if isinstance(exc, Exception):
        return exc
    error = StoreError(f"the write was rolled back: {type(exc).__name__} in the writer")
    error.__cause__ = exc
    return error


def _notify(jobs: list[_Job[Any]]) -> None:
    """Settle ``jobs`` on their loops, with one wake-up per loop (each costs a write to
    the loop's self-pipe). A closed loop has no one left to tell (and must not end the
    writer thread, which serves every other caller)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed
            _log.debug("a write finished after its event loop closed")


def _settle(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        if job.future.done():  # the loop is closing and cancelled it
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
