"""configure_logging (review2-operator #9): the HTTP clients' per-request INFO lines are
hidden unless the level is DEBUG."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from botkit._logging import configure_logging, json_logging_active
from botkit.config.settings import LoggingSettings

_HTTP = ("httpx", "httpx2", "httpcore.http11")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _log_http_lines(level: str) -> str:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level=level), stream=stream)
    for name in _HTTP:
        logging.getLogger(name).info('HTTP Request: POST http://x/bot<token>/getUpdates "200"')
        logging.getLogger(name).warning("%s: connection reset", name)
    logging.getLogger("botkit.bot").info("bot started")
    return stream.getvalue()


def test_http_client_request_lines_are_hidden_at_info() -> None:
    out = _log_http_lines("INFO")
    assert "HTTP Request" not in out
    for name in _HTTP:  # their problems still show
        assert f"{name}: connection reset" in out
    assert "bot started" in out


def test_http_client_request_lines_show_at_debug() -> None:
    _log_http_lines("INFO")  # a later DEBUG configuration undoes the INFO one
    out = _log_http_lines("DEBUG")
    assert out.count("HTTP Request") == len(_HTTP)


def test_json_logging_active_follows_the_configuration() -> None:
    configure_logging(LoggingSettings(json=True), stream=io.StringIO())
    assert json_logging_active()
    configure_logging(LoggingSettings(json=False), stream=io.StringIO())
    assert not json_logging_active()
