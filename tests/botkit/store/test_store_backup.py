"""``botkit.store.backup``: a consistent, private copy of a SQLite database while a bot
keeps writing to it; never over an existing file; PostgreSQL is pointed to pg_dump."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.errors import StoreError
from botkit.events import Contact, InboundMessage
from botkit.store import ConversationStore, StoreSettings
from botkit.store.backup import backup


def _message(n: int) -> InboundMessage:
    user = f"s:c{n % 50}"
    return InboundMessage(
        channel="web",
        conversation_key=user,
        contact=Contact("web", user),
        text=f"message {n} " + "x" * 200,
        idempotency_key=f"k{n}",
    )


async def test_a_backup_under_steady_writes_holds_every_row_committed_before_it(
    tmp_path: Path,
) -> None:
    settings = StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    dest = tmp_path / "backups" / "bot-backup.db"
    dest.parent.mkdir()
    async with ConversationStore(settings) as store:
        await store.ensure_schema()
        committed = 0
        steady = asyncio.Event()

        async def writer() -> None:
            nonlocal committed
            while True:
                m = _message(committed)
                await store.intake(m, text=m.text)
                committed += 1  # returned: committed
                if committed == 300:
                    steady.set()

        writing = asyncio.create_task(writer())
        try:
            async with asyncio.timeout(30):
                await steady.wait()
            before = committed
            async with asyncio.timeout(60):  # `sqlite3 .backup` never finished here
                done = await backup(settings, dest)
            assert committed > before, "the writer was held up for the whole backup"
        finally:
            writing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writing

    assert done.path == dest and done.size == dest.stat().st_size
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no temp left
    copy = sqlite3.connect(dest)
    try:
        assert copy.execute("PRAGMA quick_check").fetchone() == ("ok",)
        texts = {t for (t,) in copy.execute("SELECT text FROM messages")}
    finally:
        copy.close()
    missing = [n for n in range(before) if _message(n).text not in texts]
    assert not missing, f"{len(missing)} rows committed before the backup are not in it"


async def test_a_backup_never_replaces_a_file(tmp_path: Path) -> None:
    settings = StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    async with ConversationStore(settings) as store:
        await store.ensure_schema()
    dest = tmp_path / "yesterday.db"
    dest.write_bytes(b"yesterday's backup")
    with pytest.raises(StoreError, match="exists already"):
        await backup(settings, dest)
    assert dest.read_bytes() == b"yesterday's backup"
    with pytest.raises(StoreError, match="is a folder"):
        await backup(settings, tmp_path)
    with pytest.raises(StoreError, match="no folder"):
        await backup(settings, tmp_path / "nowhere" / "bot.db")
    assert sorted(os.listdir(tmp_path)) == ["bot.db", "yesterday.db"]


async def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    settings = StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(StoreError, match="no database at"):
        await backup(settings, tmp_path / "copy.db")
    assert os.listdir(tmp_path) == []


async def test_postgresql_is_pointed_to_pg_dump(tmp_path: Path) -> None:
    settings = StoreSettings(url="postgresql+asyncpg://bot:secret@db.example/botkit")
    with pytest.raises(StoreError, match="pg_dump") as caught:
        await backup(settings, tmp_path / "copy.db")
    assert "secret" not in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_botkit_db_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "bot.db"}"\n', "utf-8")
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    dest = tmp_path / "copy.db"
    assert main(["db", "backup", str(dest), "-c", str(config)]) == 0
    assert f"backed up to {dest} (" in capsys.readouterr().out
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert main(["db", "backup", str(dest), "-c", str(config)]) == StoreError.exit_code
    assert "exists already" in capsys.readouterr().err

    config.write_text('[store]\nurl = "postgresql+asyncpg://bot:secret@db.example/botkit"\n')
    code = main(["db", "backup", str(tmp_path / "pg.db"), "-c", str(config)])
    assert code == StoreError.exit_code
    err = capsys.readouterr().err
    assert "pg_dump" in err and "secret" not in err
    assert not (tmp_path / "pg.db").exists()
