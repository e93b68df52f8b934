"""PostgreSQL goes away under a running bot (stopped and started again, its backends
terminated) and comes back: messages are refused rather than acknowledged, the outage
is logged once, replies wait to be stored, and the bot recovers without a restart.

The server here is one of this module's own (the session's is shared by every test and
must not stop).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from core_helpers import RecordingConnector, message, recorder
from sqlalchemy.engine import make_url

from botkit import _store_at_start
from botkit._resume import RecoveryTiming
from botkit.bot import Bot
from botkit.cli import main
from botkit.config import settings_from_mapping
from botkit.errors import StoreError
from botkit.events import Direction
from botkit.pipeline import Context, Next
from botkit.pipeline.middleware import LoadConversationMiddleware
from botkit.store import DatabaseUnavailableError, migrate
from botkit.store import _runner as runner_module
from botkit.store.records import MessageStatus, StoredMessage

try:
    import pg_server
except ImportError:  # pragma: no cover - tests/ made a package
    from tests import pg_server  # type: ignore[no-redef,unused-ignore]

pytestmark = pytest.mark.postgres


class Server:
    """A throw-away PostgreSQL server that can be stopped and started on its port."""

    def __init__(self, server: pg_server.PgServer) -> None:
        assert server._root and server._bindir and server._as_user is not None
        self.server = server
        self.url = server.url
        self.port = make_url(server.url).port
        self._data = server._root / "data"
        self._pg_ctl = [*server._as_user, str(server._bindir / "pg_ctl"), "-D", str(self._data)]
        self._log = str(server._root / "restarted.log")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._pg_ctl, *args], check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        """A clean, fast shutdown: sessions are ended, new connections refused."""
        self._run("-m", "fast", "-w", "stop")

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self._data} -c fsync=off"
        self._run("-l", self._log, "-w", "-o", options, "start")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with pg_server.own_server("stops and starts its own server") as started:
        yield Server(started)


@pytest.fixture
def url(server: Server) -> Iterator[str]:
    """A migrated database of its own on the server, which is running at the start."""
    name = f"outage_{id(server)}_{uuid.uuid4().hex[:8]}"
    db = pg_server.create_database(server.url, name)
    pg_server.run_async(migrate.upgrade(db))
    yield db
    try:
        server.start()  # a test that failed while it was stopped
    except subprocess.CalledProcessError:
        pass  # running already
    pg_server.drop_database(server.url, name)


MakeBot = Callable[..., Any]


@pytest.fixture
def make_bot(url: str) -> MakeBot:
    @asynccontextmanager
    async def started(
        word_delay: float = 0.0,
        pool_size: int = 4,
        store: dict[str, Any] | None = None,
        recovery: RecoveryTiming | None = None,
        connector: type[RecordingConnector] = RecordingConnector,
        **bot_section: Any,
    ) -> AsyncIterator[Bot]:
        settings = settings_from_mapping(
            {
                "store": {"url": url, "pool_size": pool_size, **(store or {})},
                "backend": {"kind": "echo", "echo": {"word_delay_seconds": word_delay}},
                "bot": bot_section,
            },
            environ={},
        )
        async with Bot(settings, recovery=recovery) as bot:
            bot.attach_connector(connector(bot))
            yield bot

    return started


async def _stored(bot: Bot, conversation: str = "c1") -> list[StoredMessage]:
    return await bot.store.messages_after("test", conversation, 0, 100)


async def _off_loop(fn: Callable[[], None]) -> None:
    """pg_ctl waits for the server: the bot's tasks go on meanwhile."""
    await asyncio.get_running_loop().run_in_executor(None, fn)


async def _replying(bot: Bot, within: float = 10.0) -> None:
    """Wait until a reply is being streamed."""
    async with asyncio.timeout(within):
        # (polled: the bot has no event for "first words out", and tests add none)
        while not any(d.text for ds in bot._live.deliveries().values() for d in ds):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_message_is_refused_while_the_server_is_stopped_and_stored_once_after(
    server: Server, make_bot: MakeBot
) -> None:
    async with make_bot() as bot:
        await bot.submit(message("before", "k1"))
        await recorder(bot).wait_for(1)
        assert await bot.ready()

        await _off_loop(server.stop)
        with pytest.raises(DatabaseUnavailableError, match="cannot be reached"):
            await bot.submit(message("during", "k2"))
        assert not await bot.ready()  # /readyz fails: a balancer sends visitors elsewhere
        assert not await bot.store.ping()

        await _off_loop(server.start)
        assert await bot.ready()  # the same bot, no restart
        receipt = await bot.submit(message("during", "k2"))  # the channel's redelivery
        assert not receipt.duplicate
        assert (await bot.submit(message("during", "k2"))).duplicate  # and once more
        replies = await recorder(bot).wait_for(2)
        assert [r.text for r in replies] == ["echo: before", "echo: during"]
        await asyncio.sleep(0.2)  # (no second answer to the duplicate)
        stored = await _stored(bot)
        assert [(m.text, m.status) for m in stored] == [
            ("before", MessageStatus.ANSWERED),
            ("echo: before", MessageStatus.SENT),
            ("during", MessageStatus.ANSWERED),
            ("echo: during", MessageStatus.SENT),
        ]


async def test_the_outage_is_logged_once_and_its_end_once(
    server: Server, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_bot() as bot:
        await _off_loop(server.stop)
        caplog.set_level(logging.INFO, logger="botkit")
        for i in range(20):
            with pytest.raises(StoreError):
                await bot.submit(message("hello", f"k{i}"))
            assert not await bot.ready()
        await _off_loop(server.start)
        await bot.submit(message("hello", "k0"))
    store_lines = [r for r in caplog.records if r.name == "botkit.store"]
    down = [r for r in store_lines if "is unavailable" in r.getMessage()]
    back = [r for r in store_lines if "answers again" in r.getMessage()]
    assert len(down) == 1 and down[0].levelno == logging.WARNING
    assert "cannot be reached" in down[0].getMessage()
    assert len(back) == 1 and "calls failed meanwhile" in back[0].getMessage()


async def test_a_reply_streamed_while_the_server_stops_is_stored_when_it_is_back(
    server: Server, make_bot: MakeBot
) -> None:
    """The customer saw it: it is stored once the database answers (not lost, and not
    answered a second time), and the message queued behind it is answered after it."""
    async with make_bot(word_delay=0.05) as bot:
        await bot.submit(message("one two three four five six", "k1"))
        await bot.submit(message("and then", "k2"))  # waits for its turn
        await _replying(bot)
        await _off_loop(server.stop)
        await asyncio.sleep(1.0)  # the reply is finished and waits to be stored
        assert recorder(bot).replies == []  # final() has not returned: not stored yet
        await _off_loop(server.start)
        replies = await recorder(bot).wait_for(2)
        assert [r.text for r in replies] == ["echo: one two three four five six", "echo: and then"]
        assert all(r.seq is not None for r in replies)
        stored = await _stored(bot)
        assert [(m.direction, m.status) for m in stored] == [
            (Direction.INBOUND, MessageStatus.ANSWERED),
            (Direction.INBOUND, MessageStatus.ANSWERED),
            (Direction.OUTBOUND, MessageStatus.SENT),
            (Direction.OUTBOUND, MessageStatus.SENT),
        ]
        assert [m.in_reply_to_seq for m in stored[2:]] == [1, 2]


async def test_a_reply_task_that_finds_the_database_stopped_answers_when_it_is_back(
    server: Server, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored before the outage, its turn during it: its first read (the conversation,
    read again after the subscribers) fails. The message is claimed by this process, so
    no recovery pass would take it; it is answered once the database is back, and the
    one stored after it is answered after it."""
    async with make_bot(store={"history_cache_mb": 0}) as bot:
        entered, release = asyncio.Event(), asyncio.Event()

        async def hold(_event: object) -> None:  # a new conversation's reply waits for it
            entered.set()
            await release.wait()

        bot.events.subscribe(hold)
        first = asyncio.create_task(bot.submit(message("first", "k1", conversation="held")))
        await entered.wait()  # stored; its reply waits for the subscriber
        await _off_loop(server.stop)
        release.set()
        assert not (await first).duplicate
        await asyncio.sleep(1.5)  # the reply task met the outage and waits
        assert recorder(bot).replies == []
        await _off_loop(server.start)
        replies = await recorder(bot).wait_for(1)
        assert [r.text for r in replies] == ["echo: first"]
        await bot.submit(message("second", "k2", conversation="held"))
        await recorder(bot).wait_for(2)
        stored = await _stored(bot, "held")
        assert [(m.text, m.status) for m in stored] == [
            ("first", MessageStatus.ANSWERED),
            ("echo: first", MessageStatus.SENT),
            ("second", MessageStatus.ANSWERED),
            ("echo: second", MessageStatus.SENT),
        ]
    assert _tracebacks(caplog) == []  # the store logged the outage; waiting is quiet


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Lines logged with a traceback, or at ERROR: an outage should leave none (the
    store's warning says it once)."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info is not None or r.levelno >= logging.ERROR
    ]


class _HoldBeforeHistory:
    """Middleware right before the pipeline's history read: holds the first message
    there (stored, its reply task under way) until released."""

    def __init__(self) -> None:
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self, ctx: Context, next: Next) -> None:
        if not self.release.is_set():
            self.entered.set()
            await self.release.wait()
        await next()


async def test_an_outage_before_the_history_read_gets_the_real_answer_once_it_is_back(
    server: Server, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The database goes away between intake and the pipeline's history read: the
    reply task waits and the customer gets the answer once it is back, not the fallback
    reply (an apology that would have closed the message), and nothing is logged with a
    traceback per message."""
    caplog.set_level(logging.DEBUG, logger="botkit")
    async with make_bot(store={"history_cache_mb": 0}) as bot:
        hold = _HoldBeforeHistory()
        bot.pipeline.add_middleware(hold, owner="test", before=LoadConversationMiddleware)
        await bot.submit(message("where is my order?", "k1"))
        await hold.entered.wait()
        await _off_loop(server.stop)
        waits = len(_waiting(caplog))
        hold.release.set()
        async with asyncio.timeout(10):  # the history read fails: the reply task waits
            while len(_waiting(caplog)) == waits:  # noqa: ASYNC110 (a log line, no event)
                await asyncio.sleep(0.01)
        assert recorder(bot).replies == []  # not the fallback reply
        await _off_loop(server.start)
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text == "echo: where is my order?"
        await asyncio.sleep(0.2)  # (no second reply)
        assert [r.text for r in recorder(bot).replies] == ["echo: where is my order?"]
        stored = await _stored(bot)
        assert [(m.text, m.status) for m in stored] == [
            ("where is my order?", MessageStatus.ANSWERED),
            ("echo: where is my order?", MessageStatus.SENT),
        ]
    assert _tracebacks(caplog) == []
    bot_lines = [r for r in caplog.records if r.name == "botkit.bot"]
    assert [r.getMessage() for r in bot_lines if r.levelno >= logging.WARNING] == []


def _waiting(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """A reply task's debug lines while it waits for the database (for its turn, or
    for its reply to be stored)."""
    return [
        r
        for r in caplog.records
        if r.name in ("botkit.bot", "botkit.pipeline") and r.getMessage().count("wait")
    ]


class _Listening(RecordingConnector):
    """A connector whose listener runs until the bot stops (``bot.run`` returns when
    the listeners do)."""

    async def listen(self) -> None:
        await asyncio.Event().wait()


async def test_recovery_passes_during_an_outage_log_no_error(
    server: Server, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The periodic look for unanswered messages fails on each pass while the database
    is away: a debug line each, not an error with a traceback every pass."""
    caplog.set_level(logging.DEBUG, logger="botkit")
    timing = RecoveryTiming(heartbeat_seconds=0.1, stale_seconds=1.0, pass_seconds=0.1)
    async with make_bot(recovery=timing, connector=_Listening) as bot:
        running = asyncio.create_task(bot.run())
        await _off_loop(server.stop)
        try:
            async with asyncio.timeout(10):
                while len(_passes(caplog)) < 3:  # noqa: ASYNC110 (a log line, no event)
                    await asyncio.sleep(0.01)
        finally:
            await _off_loop(server.start)
            bot.stop()
            await running
    looked = [r for r in caplog.records if "unanswered messages" in r.getMessage()]
    assert {r.levelno for r in looked} == {logging.DEBUG}
    assert all(r.exc_info is None for r in looked)


async def test_run_starting_during_an_outage_waits_for_the_database(
    server: Server, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """``run()`` first looks for unanswered messages; a database that is away at that
    moment (a restart racing the bot's start) delays the look, it does not end the bot,
    which answers once the database is back."""
    caplog.set_level(logging.DEBUG, logger="botkit")
    timing = RecoveryTiming(heartbeat_seconds=0.1, stale_seconds=1.0, pass_seconds=0.1)
    async with make_bot(recovery=timing, connector=_Listening) as bot:
        await _off_loop(server.stop)
        running = asyncio.create_task(bot.run())
        away = True
        try:
            async with asyncio.timeout(10):
                while len(_passes(caplog)) < 2:  # noqa: ASYNC110 (a log line, no event)
                    await asyncio.sleep(0.01)
            assert not running.done()
            await _off_loop(server.start)
            away = False
            async with asyncio.timeout(10):
                while True:  # the pool's dead connections go on the first tries
                    try:
                        await bot.submit(message("back", "after", conversation="after"))
                        break
                    except DatabaseUnavailableError:
                        await asyncio.sleep(0.05)
            await recorder(bot).wait_for(1)
        finally:
            if away:
                await _off_loop(server.start)
            bot.stop()
            await running


async def test_messages_kept_while_postgresql_is_stopped_are_answered_once_it_is_back(
    server: Server, make_bot: MakeBot, tmp_path: Path
) -> None:
    """``submit_or_keep`` (Slack's intake) with the server stopped: connections refused,
    the thread-only check unreadable too; once it is started again, everything kept is
    stored and answered in order, and the thread-only message of an unknown
    conversation is dropped."""
    spool = tmp_path / "spool"
    async with make_bot(store={"outage_spool_dir": str(spool)}, connector=_Listening) as bot:
        running = asyncio.create_task(bot.run())
        away = False
        try:
            await bot.submit_or_keep(message("first", "k0"))
            await recorder(bot).wait_for(1)
            await _off_loop(server.stop)
            away = True
            for i in (1, 2):
                assert await bot.submit_or_keep(message(f"kept {i}", f"k{i}")) is None
            thread_only = message("in a thread", "t1", conversation="unknown")
            assert await bot.submit_or_keep(thread_only, existing_conversation_only=True) is None
            assert len(list(spool.glob("*.json"))) == 3
            await _off_loop(server.start)
            away = False
            replies = await recorder(bot).wait_for(3)
            assert [r.text for r in replies] == ["echo: first", "echo: kept 1", "echo: kept 2"]
            async with asyncio.timeout(10):
                while list(spool.glob("*.json")):  # noqa: ASYNC110 (files, no event)
                    await asyncio.sleep(0.05)
            assert await bot.history("test", "unknown") == []
        finally:
            if away:
                await _off_loop(server.start)
            bot.stop()
            await running


def _passes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage().startswith("looking for unanswered messages waits for the database")
    ]


async def _terminate_all(server: Server, url: str) -> int:
    dsn = server.url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            make_url(url).database,
        )
    finally:
        await admin.close()
    return killed


async def _burst(bot: Bot, tag: str, n: int = 8) -> list[BaseException | object]:
    """Messages of ``n`` conversations at once: every pooled connection is in use."""
    return await asyncio.gather(
        *(bot.submit(message(tag, f"{tag}{i}", conversation=f"{tag}{i}")) for i in range(n)),
        return_exceptions=True,
    )


async def _warm(bot: Bot) -> None:
    """Fill the pool, then let every reply finish: the next burst is the first to meet
    the dead connections (a reply still running would meet them first and make the pool
    drop them all)."""
    assert all(not isinstance(r, BaseException) for r in await _burst(bot, "warm"))
    await recorder(bot).wait_for(8)
    async with asyncio.timeout(10):
        while len(bot._replies):  # noqa: ASYNC110 (the tasks end just after the reply)
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("restart", [True, False], ids=["restart", "terminate"])
async def test_pooled_connections_the_server_closed_cost_no_message(
    server: Server, url: str, make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, restart: bool
) -> None:
    """Even within the idle-ping window (no ping: the connections were used a moment
    ago), connections the server closed are not handed out again."""
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 3600.0)
    async with make_bot(pool_size=4) as bot:
        await _warm(bot)
        if restart:
            await _off_loop(server.stop)
            await _off_loop(server.start)
        else:
            assert await _terminate_all(server, url) >= 4
        results = await _burst(bot, "after")
        assert [r for r in results if isinstance(r, BaseException)] == []
        await recorder(bot).wait_for(16)


async def test_a_dead_connection_the_driver_has_not_noticed_is_retried_once(
    server: Server, url: str, make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second line: the checkout cannot tell (the socket's close not read yet), the
    transaction fails before its work was done, nothing was committed: it runs again on
    a new connection, and the message is stored."""
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 3600.0)
    monkeypatch.setattr(runner_module, "_closed", lambda _conn: False)
    async with make_bot(pool_size=4) as bot:
        await _warm(bot)
        assert await _terminate_all(server, url) >= 4
        results = await _burst(bot, "after")
        assert [r for r in results if isinstance(r, BaseException)] == []
        await recorder(bot).wait_for(16)


async def test_shutdown_during_an_outage_ends_within_the_grace_period(
    server: Server, make_bot: MakeBot
) -> None:
    """A reply waiting for the database is cancelled at the end of the grace period
    (its message stays unanswered: the next process answers it), and closing the store
    and the process's row does not hang on the absent server."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(20):
        async with make_bot(word_delay=0.02, shutdown_grace_seconds=1.0) as bot:
            await bot.submit(message("one two three", "k1"))
            await _replying(bot)
            await _off_loop(server.stop)
            await asyncio.sleep(0.5)
            closing = loop.time()
        assert loop.time() - closing < 5.0
    await _off_loop(server.start)


class _Silent:
    """Listens on the server's port and never answers: a host that is gone, packets
    that are dropped (the kernel completes the handshake, nothing more comes)."""

    def __init__(self, port: int | None) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(64)

    def close(self) -> None:
        self.sock.close()


async def test_a_server_that_never_answers_fails_intake_after_the_connect_timeout(
    server: Server, make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "CONNECT_TIMEOUT_S", 0.5)
    loop = asyncio.get_running_loop()
    async with make_bot() as bot:
        await _off_loop(server.stop)
        silent = _Silent(server.port)
        try:
            started = loop.time()
            with pytest.raises(DatabaseUnavailableError):
                await bot.submit(message("hello", "k1"))
            assert loop.time() - started < 5.0  # not asyncpg's default 60 s
            assert not await bot.ready()
        finally:
            silent.close()
        await _off_loop(server.start)
        assert not (await bot.submit(message("hello", "k1"))).duplicate
        await recorder(bot).wait_for(1)


async def _admin(server: Server, sql: str) -> None:
    dsn = server.url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def test_a_read_only_server_refuses_messages_as_an_outage(
    server: Server, url: str, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A failover that lands on a standby: reads work, writes fail (SQLSTATE 25006).
    Messages are refused as in an outage, not taken for a broken message."""
    name = make_url(url).database
    async with make_bot() as bot:
        await _admin(server, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await _terminate_all(server, url)  # new sessions are read-only
        try:
            with pytest.raises(DatabaseUnavailableError, match="SQLSTATE 25006"):
                await bot.submit(message("hello", "k1"))
        finally:
            await _admin(server, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            await _terminate_all(server, url)
        assert not (await bot.submit(message("hello", "k1"))).duplicate
        await recorder(bot).wait_for(1)
    lines = [r.getMessage() for r in caplog.records if r.name == "botkit.store"]
    assert len([line for line in lines if "is unavailable" in line]) == 1


async def test_a_bot_started_while_the_server_is_stopped_serves_once_it_is_up(
    server: Server,
    make_bot: MakeBot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``docker compose up``: the bot comes up before PostgreSQL accepts connections.
    It waits (``[store] start_wait_seconds``) instead of ending."""
    monkeypatch.setattr(_store_at_start, "RETRY_S", (0.1, 0.2))

    async def serve_one() -> str:
        async with make_bot(store={"start_wait_seconds": 60}) as bot:
            await bot.submit(message("hello?", "k1"))
            (reply,) = await recorder(bot).wait_for(1)
            return reply.text

    await _off_loop(server.stop)
    serving = asyncio.create_task(serve_one())
    try:
        async with asyncio.timeout(30):
            while len(_start_waits(caplog)) < 2:  # noqa: ASYNC110 (a log line, no event)
                await asyncio.sleep(0.02)
        assert not serving.done()
    finally:
        await _off_loop(server.start)
    async with asyncio.timeout(60):
        assert await serving == "echo: hello?"


def _start_waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = (r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    return [line for line in lines if line.startswith("waiting for the database: ")]


async def test_a_database_that_does_not_exist_ends_the_start_at_once(
    url: str, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong name (SQLSTATE 3D000) is no outage: waiting would not cure it."""
    missing = make_url(url).set(database="no_such_botkit_db").render_as_string(False)
    async with asyncio.timeout(60):  # a regression would wait the 10 minutes
        with pytest.raises(StoreError, match="no_such_botkit_db") as caught:
            async with make_bot(store={"url": missing, "start_wait_seconds": 600}):
                pass
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert _start_waits(caplog) == []


def test_db_upgrade_beside_a_server_still_starting_waits_for_it(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A migration job started with its database (``botkit db upgrade`` before the bot
    in a compose file) waits for it as the bot does."""
    monkeypatch.setattr(_store_at_start, "RETRY_S", (0.1, 0.2))
    name = f"upgrade_{uuid.uuid4().hex[:8]}"
    db = pg_server.create_database(server.url, name)
    config = tmp_path / "bot.toml"
    config.write_text(f'[store]\nurl = "{db}"\n[backend]\nkind = "echo"\n', encoding="utf-8")
    server.stop()
    starting = threading.Timer(1.0, server.start)
    starting.start()
    try:
        assert main(["db", "upgrade", "-c", str(config)]) == 0
    finally:
        starting.join()
    try:
        assert "waiting for the database: " in capfd.readouterr().err
        assert pg_server.run_async(migrate.current(db)) == migrate.head()
    finally:
        pg_server.drop_database(server.url, name)
