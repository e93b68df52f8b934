"""Holding an SQLite database's write lock from another connection, as another program
(a backup, an operator's sqlite3 shell) would: the bot's writes then wait out their busy
timeout and fail, while readers go on (WAL). The tests' stand-in for a database outage
that SQLite can have."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["write_locked"]


@contextmanager
def write_locked(database: str | Path) -> Iterator[None]:
    """Hold the write lock of ``database`` (a file path or an SQLAlchemy SQLite URL)."""
    path = str(database)
    if "://" in path:
        path = make_url(path).database or ""
    assert path, f"not an SQLite file: {database}"
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()
