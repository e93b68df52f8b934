"""Logging setup for the CLI: level, plain or JSON lines, secrets redacted.

Values substituted from ``${VAR}`` references are treated as secrets: any log line that
contains one (a token in an exception message, a URL with a password) shows ``***``.

A line logged while a message is being answered names it (see ``botkit.log_context``):
JSON lines get the fields ``channel``, ``conversation`` and ``seq``; plain lines end
their prefix with ``[web:2#1]``. Lines about no message have neither.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from botkit.config.settings import LoggingSettings
from botkit.log_context import RECORD_ATTRIBUTE, MessageContextFilter, MessageIdentity

__all__ = ["RedactingFormatter", "configure_logging", "json_logging_active"]

_HTTP_CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore")
# Shorter values (ports, "en", "true") would redact ordinary words; real secrets are longer.
_MIN_SECRET_LEN = 6


class RedactingFormatter(logging.Formatter):
    """Formats records as text or JSON and replaces secret values with ``***``."""

    def __init__(self, *, json_lines: bool, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.json_lines = json_lines
        # Longest first, so a secret containing another is redacted whole.
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len)[::-1]

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        about: MessageIdentity | None = getattr(record, RECORD_ATTRIBUTE, None)
        if about is None:
            return line
        # The format ends with ": %(message)s": the tag goes before that colon, after
        # the logger's name ("botkit.bot [web:2#1]: reply failed").
        cut = len(line) - len(record.message) - 2
        return f"{line[:cut]} [{about.tag}]{line[cut:]}"

    def format(self, record: logging.LogRecord) -> str:
        if not self.json_lines:
            return self._redact(super().format(record))
        about: MessageIdentity | None = getattr(record, RECORD_ATTRIBUTE, None)
        # Redacted before encoding: JSON escapes quotes and backslashes, so a secret
        # holding one would no longer be found in the encoded line.
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        if about is not None:
            # The channel's name is configuration, never a secret; ids are numbers.
            entry["channel"] = about.channel
            entry["conversation"] = about.conversation
            entry["seq"] = about.seq
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    settings: LoggingSettings, *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Install one handler on the root logger (replacing earlier ones from this function)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(json_lines=settings.json_format, secrets=secrets))
    handler.addFilter(MessageContextFilter())
    handler.set_name("botkit")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "botkit"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # SQLAlchemy's engine logger would print statements at INFO; echo_sql controls that.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    # Alembic announces every plugin and migration context at INFO on each start; the
    # store logs the one line that matters ("upgrading the SQLite schema ...").
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The HTTP clients under python-telegram-bot and openai log every request at INFO:
    # each Telegram long poll (~2,900 a day idle), each streamed edit (about one a second
    # while replying), each completion. Their failures are WARNINGs and still show; the
    # request lines come back with level = "DEBUG".
    http_level = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in _HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(http_level)


def json_logging_active() -> bool:
    """True when ``configure_logging`` installed its handler with JSON lines."""
    return any(
        h.get_name() == "botkit"
        and isinstance(h.formatter, RedactingFormatter)
        and h.formatter.json_lines
        for h in logging.getLogger().handlers
    )
