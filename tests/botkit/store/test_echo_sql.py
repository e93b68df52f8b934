"""echo_sql (review2-operator #7): each statement is logged once, through the app's own
log handler (so JSON mode stays JSON), never as a plain-text copy on stdout."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from botkit._logging import configure_logging
from botkit.config.settings import LoggingSettings
from botkit.store import StoreSettings
from botkit.store._database import Database

_SQLA = ("sqlalchemy.engine", "sqlalchemy.engine.Engine")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = [(lg, lg.level, list(lg.handlers)) for lg in (root, *map(logging.getLogger, _SQLA))]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        logger.handlers = handlers


async def test_echo_sql_logs_each_statement_once_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level="INFO", json=True), stream=stream)
    db = Database(StoreSettings(url=f"sqlite:///{tmp_path / 'bot.db'}", echo_sql=True))
    async with db:
        assert await db.ping()
    captured = capsys.readouterr()
    assert "SELECT 1" not in captured.out and "SELECT 1" not in captured.err
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]  # all JSON
    selects = [e for e in entries if e["message"] == "SELECT 1"]
    assert len(selects) == 2  # open() and ping(): once each
    assert all(e["logger"].startswith("sqlalchemy.engine") for e in selects)


async def test_without_echo_sql_no_statement_is_logged(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level="DEBUG"), stream=stream)
    async with Database(StoreSettings(url=f"sqlite:///{tmp_path / 'bot.db'}")) as db:
        assert await db.ping()
    assert "SELECT 1" not in stream.getvalue()
