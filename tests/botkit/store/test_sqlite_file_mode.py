"""A SQLite database the store creates is private (mode 0600, and so are its -wal and
-shm files, which SQLite creates with the database file's mode): it holds customers'
conversations and the ``session_keys`` signing key. A file that is there already keeps
the mode the operator gave it."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from botkit.store import ConversationStore, StoreSettings, migrate


@pytest.fixture(autouse=True)
def _umask_022() -> Iterator[None]:
    """A common umask, under which a file is made -rw-r--r-- unless asked otherwise."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(folder: Path) -> dict[str, int]:
    """Each file's mode in ``folder``, by name."""
    return {p.name: _mode(p) for p in folder.iterdir()}


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_a_database_the_store_creates_is_private_and_so_are_its_wal_and_shm(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "bot.db"  # its directory is made too
    async with ConversationStore(StoreSettings(url=_url(path))) as store:
        await store.ensure_schema(auto_upgrade=True)
        await store.session_key("web")  # a write: the WAL is in use
        assert _modes(path.parent) == {
            "bot.db": 0o600,
            "bot.db-wal": 0o600,
            "bot.db-shm": 0o600,
        }


async def test_db_upgrade_creates_a_private_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await migrate.upgrade(_url(path))
    assert _mode(path) == 0o600
    assert await migrate.current(_url(path)) == migrate.head()


@pytest.mark.parametrize("mode", [0o644, 0o640])
async def test_an_existing_database_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "bot.db"
    sqlite3.connect(path).close()
    path.chmod(mode)
    await migrate.upgrade(_url(path))
    async with ConversationStore(StoreSettings(url=_url(path))) as store:
        await store.ensure_schema(auto_upgrade=False)
        await store.session_key("web")
        assert _mode(path) == mode


async def test_in_memory_and_uri_databases_create_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        async with ConversationStore(StoreSettings(url=url)) as store:
            await store.ensure_schema(auto_upgrade=True)
    assert _modes(tmp_path) == {}
    # A read-only URI opens what is there, as SQLite does; nothing named after the URI.
    path = tmp_path / "ro.db"
    await migrate.upgrade(_url(path))
    path.chmod(0o644)
    before = _modes(tmp_path)
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    assert await migrate.current(url) == migrate.head()
    # (SQLite adds the -wal and -shm a WAL database is read with, in its mode.)
    made = {name: mode for name, mode in _modes(tmp_path).items() if name not in before}
    assert set(made) <= {"ro.db-wal", "ro.db-shm"} and set(made.values()) <= {0o644}
    assert _mode(path) == 0o644
