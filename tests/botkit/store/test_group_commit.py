"""The SQLite writer: queued writes share a transaction, each isolated by a savepoint."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

from botkit.store._group_commit import GroupCommitWriter
from botkit.store._runner import install_sqlite_hooks


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
