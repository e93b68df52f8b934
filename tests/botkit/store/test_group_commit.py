"""The SQLite writer: queued writes share a transaction, each isolated by a savepoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from botkit.errors import StoreError
from botkit.store._group_commit import GroupCommitWriter
from botkit.store._runner import install_sqlite_hooks


async def _until(check: Callable[[], bool], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the writer thread's state, polled
            await asyncio.sleep(0.005)


async def _hold(writer: GroupCommitWriter, gate: threading.Event) -> asyncio.Future[bool]:
    """A write that holds the writer thread until ``gate`` opens, under way: what is
    submitted from now on queues behind it (waited for, not a sleep a slow machine can
    outlast)."""
    entered = threading.Event()

    def held(conn: Connection) -> bool:
        entered.set()
        return gate.wait(30)

    blocker = asyncio.ensure_future(writer.submit(held))
    await _until(entered.is_set)
    return blocker


async def _queued(writer: GroupCommitWriter, count: int) -> None:
    """Wait until ``count`` jobs are queued for the writer thread."""
    await _until(lambda: writer._queue.qsize() >= count)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A file database with the store's own SQLite setup (WAL, explicit BEGIN)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    install_sqlite_hooks(engine, memory=False, busy_timeout_ms=5000, foreign_keys=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    yield engine.execution_options(sqlite_begin="IMMEDIATE")
    engine.dispose()


async def test_queued_writes_commit_together_and_a_failing_one_alone_rolls_back(
    engine: Engine,
) -> None:
    writer = GroupCommitWriter(engine, max_batch=64)
    transactions: list[int] = []

    def insert(k: int) -> int:
        def work(conn: Connection) -> int:
            transactions.append(id(conn.get_transaction()))
            conn.execute(text("INSERT INTO t (k, v) VALUES (:k, 'x')"), {"k": k})
            if k % 7 == 0:
                raise ValueError(f"bad row {k}")
            return k

        return work

    # Submitted without awaiting in between: they queue while the first one runs.
    results = await asyncio.gather(
        *(writer.submit(insert(k)) for k in range(1, 101)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, ValueError)]
    assert [str(e) for e in failed] == [f"bad row {k}" for k in range(7, 101, 7)]
    assert [r for r in results if isinstance(r, int)] == [k for k in range(1, 101) if k % 7]
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(text("SELECT k FROM t ORDER BY k"))]
    assert stored == [k for k in range(1, 101) if k % 7]  # the failing rows alone are gone
    assert len(set(transactions)) < 100  # writes really were grouped

    # A bare call runs after the queued writes, outside any transaction.
    assert await writer.call(lambda: "done") == "done"
    writer.stop()


async def test_a_lone_write_that_fails_leaves_nothing(engine: Engine) -> None:
    writer = GroupCommitWriter(engine)

    def work(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t (k, v) VALUES (1, 'x')"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await writer.submit(work)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    writer.stop()


def test_a_closed_event_loop_does_not_kill_the_writer(engine: Engine) -> None:
    """A caller's loop closed before its write settled: later callers still get answers."""
    writer = GroupCommitWriter(engine)
    gate, entered = threading.Event(), threading.Event()

    def held(conn: Connection) -> bool:
        entered.set()
        return gate.wait(30)

    loop = asyncio.new_event_loop()
    task = loop.create_task(writer.submit(held))
    loop.run_until_complete(_until(entered.is_set))  # the writer waits on the gate
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    loop.close()
    gate.set()  # the write ends; settling it on the closed loop must not end the thread

    async def later() -> int:
        return await asyncio.wait_for(writer.submit(lambda conn: 7), 30)

    assert asyncio.run(later()) == 7
    writer.stop()


def _exit() -> None:
    raise SystemExit(1)


async def test_writes_after_stop_fail_instead_of_hanging(engine: Engine) -> None:
    writer = GroupCommitWriter(engine)
    assert await writer.submit(lambda conn: 1) == 1
    writer.stop()
    with pytest.raises(StoreError, match="closed"):
        await asyncio.wait_for(writer.submit(lambda conn: 2), 5)
    with pytest.raises(StoreError, match="closed"):
        await asyncio.wait_for(writer.call(lambda: 3), 5)


async def test_a_base_exception_in_a_batch_fails_the_batch_as_store_errors(
    engine: Engine,
) -> None:
    """KeyboardInterrupt in one write rolls back the batch; every caller hears a
    StoreError (which the store's callers handle): a KeyboardInterrupt set on a future
    would escape the awaiting task and stop the whole event loop."""
    writer = GroupCommitWriter(engine)
    gate = threading.Event()

    def interrupt(conn: Connection) -> None:
        raise KeyboardInterrupt

    def insert(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (k, v) VALUES (1, 'x')"))
        return 1

    blocker = await _hold(writer, gate)  # the others queue behind it and form one batch
    first = asyncio.ensure_future(writer.submit(insert))
    bad = asyncio.ensure_future(writer.submit(interrupt))
    await _queued(writer, 2)
    gate.set()
    assert await blocker is True
    with pytest.raises(StoreError):
        await first
    with pytest.raises(StoreError, match="KeyboardInterrupt"):
        await bad
    with pytest.raises(StoreError, match="SystemExit"):
        await writer.call(_exit)
    assert await writer.submit(lambda conn: 5) == 5  # the thread is still alive
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    writer.stop()


async def test_a_write_that_loses_the_transaction_fails_the_batch_consistently(
    engine: Engine,
) -> None:
    """SQLite rolls back the whole transaction on some errors (disk full, I/O error).
    The writes after it must not run outside any transaction (each SAVEPOINT would then
    commit on its own) while being reported failed: what callers hear matches the file."""
    writer = GroupCommitWriter(engine)
    gate = threading.Event()

    def insert(k: int) -> Callable[[Connection], int]:
        def work(conn: Connection) -> int:
            conn.execute(text("INSERT INTO t (k, v) VALUES (:k, 'x')"), {"k": k})
            return k

        return work

    def disk_full(conn: Connection) -> None:
        conn.exec_driver_sql("ROLLBACK")  # what SQLite itself does on SQLITE_FULL
        raise OSError("database or disk is full")

    blocker = await _hold(writer, gate)
    jobs = [asyncio.ensure_future(writer.submit(fn)) for fn in (insert(1), disk_full, insert(2))]
    await _queued(writer, 3)
    gate.set()
    await blocker
    results = await asyncio.gather(*jobs, return_exceptions=True)
    with engine.connect() as conn:
        stored = {row[0] for row in conn.execute(text("SELECT k FROM t"))}
    reported = {r for r in results if isinstance(r, int)}
    assert reported == stored
    assert isinstance(results[1], Exception)
    assert await writer.submit(insert(3)) == 3  # the writer goes on
    writer.stop()


async def test_a_batch_without_failures_runs_each_write_once_without_savepoints(
    engine: Engine,
) -> None:
    """Savepoints cost more than a typical write: a batch takes them only after a write
    failed, when it runs again with each write isolated."""
    writer = GroupCommitWriter(engine)
    gate = threading.Event()
    statements: list[str] = []
    calls: dict[int, int] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _log(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0].upper())

    def insert(k: int, fail: bool = False) -> Callable[[Connection], int]:
        def work(conn: Connection) -> int:
            calls[k] = calls.get(k, 0) + 1
            conn.execute(text("INSERT INTO t (k, v) VALUES (:k, 'x')"), {"k": k})
            if fail:
                raise ValueError(f"bad row {k}")
            return k

        return work

    async def batch(*fns: Callable[[Connection], object]) -> list[object]:
        blocker = await _hold(writer, gate)
        jobs = [asyncio.ensure_future(writer.submit(fn)) for fn in fns]
        await _queued(writer, len(fns))
        gate.set()
        await blocker
        gate.clear()
        return await asyncio.gather(*jobs, return_exceptions=True)

    assert await batch(insert(1), insert(2), insert(3)) == [1, 2, 3]
    assert calls == {1: 1, 2: 1, 3: 1}
    assert "SAVEPOINT" not in statements

    results = await batch(insert(4), insert(5, fail=True), insert(6))
    assert results[0] == 4 and results[2] == 6 and isinstance(results[1], ValueError)
    # The batch stopped at the failure and ran again, each write in its own savepoint.
    assert (calls[4], calls[5], calls[6]) == (2, 2, 1)
    assert "SAVEPOINT" in statements
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT k FROM t ORDER BY k"))] == [1, 2, 3, 4, 6]
    writer.stop()
