"""Logging setup for the CLI: level, plain or JSON lines, secrets redacted.

Values substituted from ``${VAR}`` references are treated as secrets: any log line that
contains one (a token in an exception message, a URL with a password) shows ``***``.

A line logged while a message is being answered names it (see ``botkit.log_context``):
JSON lines get the fields ``channel``, ``conversation`` and ``seq``; plain lines end
their prefix with ``[web:2#1]``. Lines about no message have neither.

``botkit run`` writes its lines from a thread of their own (``background=True``): a
write to stderr blocks while the pipe behind it is full (a log shipper that stalls,
``| less`` not scrolled), and the event loop must not block with it. At the call site a
record only gets its message made (``msg % args``), its message identity and its
traceback text; redacting, JSON-encoding and writing happen in the writer thread, so
the lines are the same as written directly. The queue between them holds at most
``QUEUE_LINES`` lines: past that, lines are dropped and counted, and the next line
written is a WARNING saying how many (a bot that stops answering because nobody reads
its log would be worse). ``stop_logging`` writes what is queued when the CLI exits
(the last lines, "stopped (SIGTERM)", are kept). Other commands write directly.
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

from botkit.config.settings import LoggingSettings
from botkit.log_context import RECORD_ATTRIBUTE, MessageContextFilter, MessageIdentity

__all__ = [
    "QUEUE_LINES",
    "RedactingFormatter",
    "configure_logging",
    "json_logging_active",
    "stop_logging",
]

_HTTP_CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore")
# Shorter values (ports, "en", "true") would redact ordinary words; real secrets are longer.
_MIN_SECRET_LEN = 6
# Lines waiting for the writer thread (a few MB of ordinary lines): enough for a burst
# while stderr's reader catches up, bounded when it has stopped reading.
QUEUE_LINES = 10_000
# How long stopping waits for the queued lines to be written: a reader that has
# stalled for good must not keep the process from exiting.
_FLUSH_TIMEOUT_S = 10.0


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
        elif record.exc_text:  # formatted at the call site (``_QueueHandler.prepare``)
            entry["exception"] = self._redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


class _QueueHandler(QueueHandler):
    """Hands records to the writer thread; counts those a full queue drops."""

    def __init__(self, lines: queue.Queue[logging.LogRecord | None], formatter: RedactingFormatter):
        super().__init__(lines)
        self.lines = lines
        self.target_formatter = formatter
        self.dropped = 0
        self._dropped_lock = threading.Lock()
        self.listener: _Writer | None = None

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # QueueHandler.prepare would format the whole line here (on the caller's
        # thread) and drop the traceback; only what cannot wait is done here: the
        # message from its arguments (they may change, or belong to this thread), and
        # the traceback as text (its frames are this thread's). The filters already
        # set the message identity (``MessageContextFilter``) on the record.
        record = copy.copy(record)  # other handlers (pytest's capture) keep the original
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.target_formatter.formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.lines.put_nowait(record)
        except queue.Full:
            with self._dropped_lock:
                self.dropped += 1

    def take_dropped(self) -> int:
        with self._dropped_lock:
            dropped, self.dropped = self.dropped, 0
        return dropped


class _Writer(QueueListener):
    """The writer thread: formats and writes the queued records, first saying how many
    were dropped since the last line it wrote."""

    def __init__(self, source: _QueueHandler, target: logging.Handler) -> None:
        super().__init__(source.queue, target)
        self.source = source
        self.lines: queue.Queue[logging.LogRecord | None] = source.lines

    def handle(self, record: logging.LogRecord) -> None:
        self.report_dropped()
        super().handle(record)

    def report_dropped(self) -> None:
        dropped = self.source.take_dropped()
        if dropped:
            note = logging.makeLogRecord(
                {
                    "name": "botkit.logging",
                    "levelno": logging.WARNING,
                    "levelname": "WARNING",
                    "msg": f"{dropped} log lines were dropped: stderr was not read fast enough",
                }
            )
            super().handle(note)

    def stop_within(self, seconds: float) -> bool:
        """Write what is queued, then end the thread; give up after ``seconds`` when
        the lines cannot be written (the reader of stderr has stalled).

        Returns:
            Whether the thread ended (everything queued was written).
        """
        deadline = time.monotonic() + seconds
        try:
            self.lines.put(None, timeout=seconds)  # the sentinel, once there is room
        except queue.Full:
            return False
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
            self._thread = None
        self.report_dropped()
        return True


def configure_logging(
    settings: LoggingSettings,
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    background: bool = False,
) -> None:
    """Install one handler on the root logger (replacing earlier ones from this function).

    Args:
        settings: level and format.
        secrets: values to redact.
        stream: where lines go (stderr).
        background: write from a thread of their own, so that a stalled reader of
            ``stream`` never blocks the caller (``botkit run``); ``stop_logging`` then
            writes the last lines.
    """
    writer = logging.StreamHandler(stream or sys.stderr)
    formatter = RedactingFormatter(json_lines=settings.json_format, secrets=secrets)
    writer.setFormatter(formatter)
    handler: logging.Handler = writer
    if background:
        queued = _QueueHandler(queue.Queue(QUEUE_LINES), formatter)
        queued.listener = _Writer(queued, writer)
        handler = queued
    # On the handler the caller's thread runs: the identity is the caller's context's.
    handler.addFilter(MessageContextFilter())
    handler.set_name("botkit")
    root = logging.getLogger()
    stop_logging()
    for old in [h for h in root.handlers if h.get_name() == "botkit"]:
        root.removeHandler(old)
    root.addHandler(handler)
    if isinstance(handler, _QueueHandler) and handler.listener is not None:
        handler.listener.start()
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


def stop_logging() -> None:
    """Write the lines still queued for the writer thread and end it (no-op without
    one); waits at most ``_FLUSH_TIMEOUT_S`` for a stalled stderr. The handler stays
    installed and writes directly from then on."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _QueueHandler) and handler.listener is not None:
            listener, handler.listener = handler.listener, None
            if listener.stop_within(_FLUSH_TIMEOUT_S):
                # Lines logged later (while the process ends) are written directly.
                handler.enqueue = listener.handle  # type: ignore[method-assign]


def _formatter(handler: logging.Handler) -> logging.Formatter | None:
    if isinstance(handler, _QueueHandler):
        return handler.target_formatter
    return handler.formatter


def json_logging_active() -> bool:
    """True when ``configure_logging`` installed its handler with JSON lines."""
    return any(
        h.get_name() == "botkit"
        and isinstance(f := _formatter(h), RedactingFormatter)
        and f.json_lines
        for h in logging.getLogger().handlers
    )
