"""The bot waits at start for a database it cannot use yet (``[store]
start_wait_seconds``): a SQLite file locked by another program, a PostgreSQL server that
refuses connections. What waiting cannot cure ends the start at once.

(PostgreSQL stopped and then started under a starting bot: tests/botkit/test_db_outage.py.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder
from sqlite_lock import write_locked

from botkit import _store_at_start
from botkit.bot import Bot
from botkit.cli import main
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError, DatabaseUnavailableError, StoreError

BUSY_MS = 100


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store_at_start, "RETRY_S", (0.1, 0.2))


def _waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = (r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    return [line for line in lines if line.startswith("waiting for the database: ")]


def _settings(make_settings: Callable[..., Settings], url: str, wait_s: float) -> Settings:
    return make_settings(
        store={"url": url, "sqlite_busy_timeout_ms": BUSY_MS, "start_wait_seconds": wait_s}
    )


async def _made(settings: Settings) -> None:
    """Make the database file and its schema, as a first run did."""
    async with Bot(settings):
        pass


async def test_a_start_while_the_sqlite_file_is_locked_waits_and_then_serves(
    make_settings: Callable[..., Settings], core_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(make_settings, core_db_url, 30)
    await _made(settings)
    path = core_db_url.removeprefix("sqlite+aiosqlite:///")
    with write_locked(path):
        starting = asyncio.create_task(Bot(settings).__aenter__())
        async with asyncio.timeout(30):
            while len(_waits(caplog)) < 2:  # noqa: ASYNC110 (a log line, no event)
                await asyncio.sleep(0.02)
        assert not starting.done()
    bot = await starting
    # Each wait names the database; the store's outage warnings (messages refused,
    # replies waiting, "answers again") are for a running bot, not a starting one.
    assert all(path in line for line in _waits(caplog))
    said = [r.getMessage() for r in caplog.records]
    assert not [line for line in said if "refused" in line or "answers again" in line]
    try:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello?", "k1"))
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text == "echo: hello?"
    finally:
        await bot.close()
    assert any("answers after" in r.getMessage() for r in caplog.records)


async def test_with_no_wait_a_locked_file_ends_the_start_at_once(
    make_settings: Callable[..., Settings], core_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(make_settings, core_db_url, 0)
    await _made(settings)
    with (
        write_locked(core_db_url.removeprefix("sqlite+aiosqlite:///")),
        pytest.raises(DatabaseUnavailableError, match="locked") as caught,
    ):
        await Bot(settings).__aenter__()
    assert _waits(caplog) == []
    assert core_db_url.removeprefix("sqlite+aiosqlite:///") in str(caught.value)


async def test_an_unreachable_server_is_waited_for_then_named_in_the_error(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: every connection is refused.
    url = "postgresql+asyncpg://bot:hunter2-secret@127.0.0.1:1/botkit"
    settings = _settings(make_settings, url, 2)
    with pytest.raises(DatabaseUnavailableError) as caught:
        await Bot(settings).__aenter__()
    text = str(caught.value)
    assert "start_wait_seconds" in text and "cannot be reached" in text
    assert "hunter2-secret" not in text
    assert len(_waits(caplog)) >= 1
    assert all("hunter2-secret" not in line for line in _waits(caplog))


async def test_what_waiting_cannot_cure_ends_the_start_at_once(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SQLite file under a path that is a file: no wait, even with a long one set (a
    regression would wait the 10 minutes and fail the test's timeout)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings = _settings(make_settings, f"sqlite+aiosqlite:///{blocker / 'bot.db'}", 600)
    async with asyncio.timeout(60):
        with pytest.raises(StoreError) as caught:
            await Bot(settings).__aenter__()
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert _waits(caplog) == []


@pytest.mark.parametrize("value", [-1, "nan", "inf", 86_401, "soon"])
def test_a_hostile_start_wait_is_refused_by_the_config(value: object) -> None:
    with pytest.raises(ConfigError, match="start_wait_seconds"):
        settings_from_mapping({"store": {"start_wait_seconds": value}}, environ={})


def test_db_upgrade_does_not_wait_for_a_sqlite_file_it_cannot_make(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    config = tmp_path / "bot.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{blocker / "bot.db"}"\nstart_wait_seconds = 5\n'
        '[backend]\nkind = "echo"\n',
        encoding="utf-8",
    )
    assert main(["db", "upgrade", "-c", str(config)]) == 1
    err = capfd.readouterr().err
    assert "migration failed" in err and "waiting for the database" not in err
