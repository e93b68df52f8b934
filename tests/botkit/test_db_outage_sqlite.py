"""SQLite's outages: another process holds the write lock past the busy timeout (a
backup tool, a long `sqlite3` session), the disk is full. The message is refused with
a clear reason, nothing is lost silently, and the bot goes on once the file is free."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder
from sqlite_lock import write_locked

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Direction
from botkit.store import DatabaseUnavailableError
from botkit.store._outage import outage_reason
from botkit.store.records import MessageStatus

BUSY_MS = 200  # the bot's busy timeout here: a lock held longer fails its write


@pytest.fixture
def locked_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def build(word_delay: float = 0.0) -> Settings:
        return make_settings(
            store={"sqlite_busy_timeout_ms": BUSY_MS},
            backend={"echo": {"word_delay_seconds": word_delay}},
        )

    return build


async def test_a_message_is_refused_while_the_file_is_locked_and_stored_after(
    locked_settings: Callable[..., Settings], core_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botkit.store")
    async with Bot(locked_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with write_locked(core_db_url):
            for i in range(5):
                with pytest.raises(DatabaseUnavailableError) as caught:
                    await bot.submit(message("hello", f"k{i}"))
                assert "locked by another connection beyond sqlite_busy_timeout_ms" in str(
                    caught.value
                )
        for i in range(5):  # the channel's redeliveries
            assert not (await bot.submit(message("hello", f"k{i}"))).duplicate
        await recorder(bot).wait_for(5)
        stored = await bot.store.messages_after("test", "c1", 0, 100)
        inbound = [m for m in stored if m.direction is Direction.INBOUND]
        assert [m.status for m in inbound] == [MessageStatus.ANSWERED] * 5
    lines = [r.getMessage() for r in caplog.records if r.name == "botkit.store"]
    assert len([line for line in lines if "is unavailable" in line]) == 1
    assert len([line for line in lines if "answers again" in line]) == 1


async def test_a_reply_finished_while_the_file_is_locked_is_stored_after(
    locked_settings: Callable[..., Settings], core_db_url: str
) -> None:
    async with Bot(locked_settings(word_delay=0.02)) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("one two three", "k1"))
        with write_locked(core_db_url):
            await asyncio.sleep(3 * BUSY_MS / 1000 + 0.3)  # streamed, tried, refused
            assert recorder(bot).replies == []
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text == "echo: one two three" and reply.seq is not None
        stored = await bot.store.messages_after("test", "c1", 0, 100)
        assert [(m.direction, m.status) for m in stored] == [
            (Direction.INBOUND, MessageStatus.ANSWERED),
            (Direction.OUTBOUND, MessageStatus.SENT),
        ]


def test_a_full_disk_and_a_lock_read_as_outages(tmp_path: Path) -> None:
    """Real sqlite3 errors, as the store meets them (a full disk cannot be made here
    without a file system of its own: max_page_count fills the file instead)."""
    path = str(tmp_path / "full.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert outage_reason(full.value) == "the disk holding the SQLite file is full"
    other = sqlite3.connect(path, isolation_level=None, timeout=0.01)
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("BEGIN IMMEDIATE")
    reason = outage_reason(locked.value)
    assert reason is not None and "locked" in reason and reason.name == "locked"
    conn.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError) as bad:
        conn.execute("SELECT nope FROM t")
    assert outage_reason(bad.value) is None  # a statement's own failure: not an outage
    other.close()
    conn.close()
