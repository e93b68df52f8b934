"""Telling a database outage from other store failures, and saying so once, not per call.

An outage (PostgreSQL restarting or unreachable, a connection cut, SQLite's file locked
past the busy timeout, a full disk) fails every store call alike until it ends; what the
caller should do differs from a failure of one call (a bad row, a bug): wait and try
again. ``DatabaseUnavailableError`` marks it, so that callers (the reply that was shown
but not stored yet, a reply task) can wait for the database instead of giving up, while
a channel still refuses a message it cannot store (the customer's client or the platform
sends it again).

During an outage every message and every background task would log its own failure;
``OutageLog`` logs one warning when the database stops answering, one a minute while it
stays away (counting the failed calls), and one line when it answers again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# Defined with the other errors; imported from here (and botkit.store) before it moved.
from botkit.errors import DatabaseUnavailableError
from botkit.throttled_warning import ThrottledWarning

__all__ = ["DatabaseUnavailableError", "OutageLog", "outage_reason"]

log = logging.getLogger("botkit.store")

# SQLSTATE classes and codes that mean "the server is not there for us now", not "this
# statement is wrong": 08 connection exceptions; 53 insufficient resources (disk full,
# out of memory, too many connections); 57P01-57P03 shutdown, crash, starting up; 25006
# a write on a read-only server (a standby, just after a failover).
_OUTAGE_CLASSES = ("08", "53")
_OUTAGE_CODES = frozenset({"57P01", "57P02", "57P03", "25006"})
# sqlite3 says these as text only (its error codes are not exposed before Python 3.11's
# sqlite_errorname, and not by every build).
_SQLITE_OUTAGES = {
    "database is locked": "the SQLite file is locked by another connection beyond "
    "sqlite_busy_timeout_ms",
    "database table is locked": "the SQLite file is locked by another connection beyond "
    "sqlite_busy_timeout_ms",
    "database or disk is full": "the disk holding the SQLite file is full",
    "disk i/o error": "the disk holding the SQLite file failed to read or write",
    "unable to open database file": "the SQLite file cannot be opened",
}


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else None


def outage_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the database is unavailable, or None for any other failure."""
    if isinstance(exc, PoolTimeoutError):  # every pooled connection hangs on a call
        return "no database connection became free within the pool timeout"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "the connection to the database was lost"
    orig = getattr(exc, "orig", None)
    for error in (exc, orig):
        if error is None:
            continue
        code = _sqlstate(error)
        if code is not None and (code[:2] in _OUTAGE_CLASSES or code in _OUTAGE_CODES):
            return f"the database refuses work (SQLSTATE {code})"
        if isinstance(error, sqlite3.OperationalError):
            text = str(error).lower()
            for fragment, reason in _SQLITE_OUTAGES.items():
                if fragment in text:
                    return reason
        if isinstance(error, OSError):  # refused, reset, unreachable, timed out
            return "the database server cannot be reached"
    return None


class OutageLog:
    """Logs the database going away and coming back, throttled while it stays away.

    Args:
        where: the database, safe to log (its URL with the password masked).
        interval_s: shortest time between two "still unavailable" warnings.
        clock: seconds (monotonic).
    """

    def __init__(
        self, where: str, *, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._down_since: float | None = None
        self._failures = 0
        self._writes_failed = False

        def throttle() -> ThrottledWarning:
            return ThrottledWarning(
                log,
                f"the database at {where} is unavailable (%s: %s); messages that cannot "
                "be stored are refused, and replies wait to be stored until it answers",
                interval_s=interval_s,
                clock=clock,
            )

        self._throttle = throttle
        self._warning = throttle()

    @property
    def down(self) -> bool:
        """Whether the last call failed for an outage."""
        return self._down_since is not None

    def failed(self, reason: str, detail: str, *, write: bool) -> None:
        """A call failed for an outage (``reason``: ``outage_reason``; ``detail``: the
        driver's one-line error, without SQL or parameters)."""
        if self._down_since is None:
            self._down_since = self._clock()
        self._failures += 1
        self._writes_failed = self._writes_failed or write
        self._warning.warn(reason, detail)

    def succeeded(self, *, write: bool) -> None:
        """A call worked: if the database was away, say that it is back. A read does not
        end an outage of writes: a locked SQLite file, a full disk or a read-only
        standby still serve reads."""
        if self._down_since is None or (self._writes_failed and not write):
            return
        self._writes_failed = False
        seconds = self._clock() - self._down_since
        failures, self._failures, self._down_since = self._failures, 0, None
        self._warning = self._throttle()  # the next outage is reported at once
        log.warning(
            "the database answers again after %.1f s unavailable (%d calls failed meanwhile)",
            seconds,
            failures,
        )
