"""Statements the server cancels for a DBA's ``lock_timeout`` (SQLSTATE 55P03) or
``statement_timeout`` (57014) are waited for like an outage (audit-pg finding 2): a
reply the customer saw is stored once the lock is gone, not lost with its message marked
answered; intake refuses the message as unavailable (the channel sends it again); the
recovery look waits for its next pass.

The timeouts are set per session through the URL's ``options``, as a role's
``ALTER ROLE ... SET lock_timeout`` would.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import asyncpg
import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import settings_from_mapping
from botkit.events import Direction
from botkit.store import DatabaseUnavailableError, StoreSettings, migrate
from botkit.store._database import Database
from botkit.store.records import MessageStatus

try:
    import pg_server
except ImportError:  # pragma: no cover - tests/ made a package
    from tests import pg_server  # type: ignore[no-redef,unused-ignore]

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(pg_server_url: str) -> Iterator[str]:
    """A migrated database of this test's own (its rows are locked and looked at)."""
    name = f"timeouts_{uuid.uuid4().hex[:12]}"
    db = pg_server.create_database(pg_server_url, name)
    pg_server.run_async(migrate.upgrade(db))
    yield db
    pg_server.drop_database(pg_server_url, name)


def _with_options(url: str, options: str) -> str:
    return f"{url}?options={quote(options)}"


@asynccontextmanager
async def _bot(url: str) -> AsyncIterator[Bot]:
    settings = settings_from_mapping(
        {
            "store": {"url": _with_options(url, "-c lock_timeout=200ms"), "pool_size": 4},
            "backend": {"kind": "echo", "echo": {"word_delay_seconds": 0.05}},
        },
        environ={},
    )
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        yield bot


@asynccontextmanager
async def _conversations_locked(url: str) -> AsyncIterator[None]:
    """Hold every conversation row, as a purge batch or an agent's status change does."""
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with admin.transaction():
            await admin.execute("SELECT id FROM conversations FOR UPDATE")
            yield
    finally:
        await admin.close()


async def _replying(bot: Bot) -> None:
    async with asyncio.timeout(10):
        while not any(d.text for ds in bot._live.deliveries().values() for d in ds):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_streamed_reply_cancelled_by_lock_timeout_is_stored_once_the_lock_is_gone(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with _bot(url) as bot:
        await bot.submit(message("one two three four five six", "k1"))
        await _replying(bot)
        async with _conversations_locked(url):
            await asyncio.sleep(1.0)  # the reply ends meanwhile; storing it meets the lock
            assert recorder(bot).replies == []  # final() waits: not stored yet
            # A customer's message meanwhile is refused as the database being away (the
            # channel sends it again), without a traceback.
            with pytest.raises(DatabaseUnavailableError, match="lock_timeout"):
                await bot.submit(message("meanwhile", "k2"))
        replies = await recorder(bot).wait_for(1, within=15)
        assert [r.text for r in replies] == ["echo: one two three four five six"]
        assert replies[0].seq is not None
        stored = await bot.store.messages_after("test", "c1", 0, 10)
        assert [(m.direction, m.status) for m in stored] == [
            (Direction.INBOUND, MessageStatus.ANSWERED),
            (Direction.OUTBOUND, MessageStatus.SENT),
        ]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    waits = [r.getMessage() for r in caplog.records if "is unavailable" in r.getMessage()]
    assert waits and "lock_timeout" in waits[0]


@pytest.mark.parametrize("write", [False, True])
async def test_statement_timeout_is_an_outage_for_reads_and_writes(url: str, write: bool) -> None:
    """The recovery look and every other caller get ``DatabaseUnavailableError``, which
    they wait on (a debug line), not a failure logged with its traceback per pass."""
    settings = StoreSettings(url=_with_options(url, "-c statement_timeout=50ms"))
    async with Database(settings) as db:
        run = db._write if write else db._read
        with pytest.raises(DatabaseUnavailableError, match="57014") as caught:
            await run(lambda conn: conn.exec_driver_sql("SELECT pg_sleep(1)"))
        assert caught.value.reason == "timeout"
        assert db.outage.failures_by_reason["timeout"] == 1
        await db._write(lambda conn: conn.exec_driver_sql("SELECT 1"))
        assert not db.outage.down  # the next statement that works ends it
