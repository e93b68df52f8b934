"""Telling a database outage from other store failures, and saying so once, not per call.

An outage (PostgreSQL restarting or unreachable, a connection cut, a statement the
server cancelled for a lock or statement timeout, SQLite's file locked past the busy
timeout, a full disk) fails every store call alike until it ends; what the
caller should do differs from a failure of one call (a bad row, a bug): wait and try
again. ``DatabaseUnavailableError`` marks it, so that callers (the reply that was shown
but not stored yet, a reply task) can wait for the database instead of giving up, while
a channel still refuses a message it cannot store (the customer's client or the platform
sends it again).

During an outage every message and every background task would log its own failure;
``OutageLog`` logs one warning when the database stops answering, one a minute while it
stays away (counting the failed calls), and one line when it answers again. It also
keeps what the metrics show for alerting (``botkit_database_up``,
``botkit_database_errors_total{reason}``): whether the database is away now, and the
failed calls by a short reason (``OUTAGE_REASONS``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# Defined with the other errors; imported from here (and botkit.store) before it moved.
from botkit.errors import DatabaseUnavailableError
from botkit.throttled_warning import ThrottledWarning

__all__ = [
    "OUTAGE_REASONS",
    "DatabaseUnavailableError",
    "OutageLog",
    "OutageReason",
    "outage_reason",
    "sqlstate",
]

log = logging.getLogger("botkit.store")

# The reasons' short names (a metric's label: a few fixed values, no driver text).
OUTAGE_REASONS = (
    "unreachable",  # connection refused, reset, timed out
    "connection_lost",  # a connection died under a call
    "pool_timeout",  # every pooled connection hangs on a call
    "connection",  # SQLSTATE class 08
    "resources",  # SQLSTATE class 53: disk full, out of memory, too many connections
    "shutdown",  # SQLSTATE 57P01-57P03: shutting down, crashed, starting up
    "read_only",  # SQLSTATE 25006: a standby, just after a failover
    "timeout",  # SQLSTATE 55P03 / 57014: lock_timeout, statement_timeout, a cancel
    "locked",  # the SQLite file, beyond sqlite_busy_timeout_ms
    "disk_full",
    "disk_error",
    "cannot_open",  # the SQLite file
)

# SQLSTATE classes and codes that mean "the server is not there for us now", not "this
# statement is wrong" (see OUTAGE_REASONS).
_OUTAGE_CLASSES = {"08": "connection", "53": "resources"}
_OUTAGE_CODES = {
    "57P01": "shutdown",
    "57P02": "shutdown",
    "57P03": "shutdown",
    "25006": "read_only",
}
# A statement the server cancelled for a timeout the DBA set (a role's or database's
# ``lock_timeout`` or ``statement_timeout``; 57014 also answers ``pg_cancel_backend``).
# Nothing is wrong with the statement: a lock held by a purge, an agent's status change
# or a migration is gone a moment later, so it is waited for like an outage. As a plain
# failure it lost a reply the customer had already seen, marking the message answered.
# A statement_timeout can also recur for ever (a statement slow on its own): ``Database``
# makes the same call's third 57014 in a row a plain failure (``STATEMENT_CANCELS``).
_CANCELLED = {
    "55P03": "the server's lock_timeout cancelled a statement waiting for a lock",
    "57014": "the server cancelled a statement (statement_timeout, or a cancel request)",
}
# sqlite3 says these as text only (its error codes are not exposed before Python 3.11's
# sqlite_errorname, and not by every build).
_LOCKED = "the SQLite file is locked by another connection beyond sqlite_busy_timeout_ms"
_SQLITE_OUTAGES = {
    "database is locked": ("locked", _LOCKED),
    "database table is locked": ("locked", _LOCKED),
    "database or disk is full": ("disk_full", "the disk holding the SQLite file is full"),
    "disk i/o error": ("disk_error", "the disk holding the SQLite file failed to read or write"),
    "unable to open database file": ("cannot_open", "the SQLite file cannot be opened"),
}


# TLS errors that are a configuration the server keeps, not cured by time: OpenSSL's
# reason codes for no common protocol version or cipher (a certificate that does not
# verify is ``ssl.SSLCertVerificationError``), and asyncpg's words for a server that has
# no TLS (an OSError). Any other TLS error is an outage like a cut connection: a record
# that fails its MAC (DECRYPTION_FAILED_OR_BAD_RECORD_MAC), a TLS proxy that restarts
# mid-handshake, an EOF; failing a reply for it lost what the customer had seen.
_TLS_MISCONFIGURED = frozenset(
    {
        "WRONG_VERSION_NUMBER",  # TLS spoken to something that is not (a plain port)
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",  # the server's answer to no shared cipher
        "CERTIFICATE_VERIFY_FAILED",
        "TLSV1_ALERT_UNKNOWN_CA",  # the server refuses our client certificate
    }
)
_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")
_NO_TLS = "rejected SSL upgrade"


class OutageReason(str):
    """Why the database is unavailable, in words for the log; ``name`` is its short
    name (one of ``OUTAGE_REASONS``) for the metrics."""

    name: str

    def __new__(cls, name: str, text: str) -> OutageReason:
        reason = super().__new__(cls, text)
        reason.name = name
        return reason


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else None


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of ``exc`` or of the driver error it wraps, if any."""
    for error in (exc, getattr(exc, "orig", None)):
        code = None if error is None else _sqlstate(error)
        if code is not None:
            return code
    return None


def outage_reason(exc: BaseException) -> OutageReason | None:
    """Why ``exc`` means the database is unavailable, or None for any other failure."""
    if isinstance(exc, PoolTimeoutError):
        return OutageReason(
            "pool_timeout", "no database connection became free within the pool timeout"
        )
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return OutageReason("connection_lost", "the connection to the database was lost")
    orig = getattr(exc, "orig", None)
    for error in (exc, orig):
        if error is None:
            continue
        code = _sqlstate(error)
        if code in _CANCELLED:
            return OutageReason("timeout", f"{_CANCELLED[code]} (SQLSTATE {code})")
        if code is not None:
            name = _OUTAGE_CODES.get(code) or _OUTAGE_CLASSES.get(code[:2])
            if name is not None:
                return OutageReason(name, f"the database refuses work (SQLSTATE {code})")
        if isinstance(error, sqlite3.OperationalError):
            text = str(error).lower()
            for fragment, (name, reason) in _SQLITE_OUTAGES.items():
                if fragment in text:
                    return OutageReason(name, reason)
        if isinstance(error, ssl.SSLError) and _tls_misconfigured(error):
            return None  # (an OSError) the same next time: see _TLS_MISCONFIGURED
        if isinstance(error, ConnectionError) and _NO_TLS in str(error):
            return None  # ?sslmode=require, and a server without TLS: the same next time
        if isinstance(error, OSError):  # refused, reset, unreachable, timed out
            return OutageReason("unreachable", "the database server cannot be reached")
    return None


def _tls_misconfigured(error: ssl.SSLError) -> bool:
    if isinstance(error, ssl.SSLCertVerificationError):
        return True
    reason = getattr(error, "reason", None)
    if not isinstance(reason, str):  # (set by OpenSSL; else only in the text)
        found = _SSL_REASON.search(str(error))
        reason = found.group(1) if found else None
    return reason in _TLS_MISCONFIGURED


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
        # Whether the heartbeat's own connection fails (see ``failed``).
        self._beat_failing = False
        self._by_reason: Counter[str] = Counter(dict.fromkeys(OUTAGE_REASONS, 0))

        # The URL goes into a %-format: its query may hold percent-encoding
        # (``options=-c%20lock_timeout%3D5s``), which read as conversions failed the call.
        where = where.replace("%", "%%")

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

        def beat_throttle() -> ThrottledWarning:
            return ThrottledWarning(
                log,
                "the process heartbeat's own connection to the database at "
                f"{where} fails (%s: %s); the other calls are not affected by it",
                interval_s=interval_s,
                clock=clock,
            )

        self._beat_throttle = beat_throttle
        self._beat_warning = self._beat_throttle()
        self._silent = False

    @property
    def down(self) -> bool:
        """Whether the database is away: from a call that failed for an outage until one
        works again (a write, once writes failed: see ``succeeded``)."""
        return self._down_since is not None

    @property
    def failures_by_reason(self) -> Mapping[str, int]:
        """Calls failed for an outage since the start, by ``OUTAGE_REASONS`` name (each
        one present, 0 until it happens)."""
        return dict(self._by_reason)

    @contextlib.contextmanager
    def reported_by_caller(self) -> Iterator[None]:
        """Within it the caller reports the database's failures itself (the start's
        wait for the database): they are counted, not logged, and the outage they make
        ends with the block, unannounced; the next one is reported at once."""
        self._silent = True
        try:
            yield
        finally:
            self._silent = False
            self._down_since, self._failures, self._writes_failed = None, 0, False
            self._warning = self._throttle()

    def failed(
        self, reason: OutageReason, detail: str, *, write: bool, shared: bool = True
    ) -> None:
        """A call failed for an outage (``reason``: ``outage_reason``; ``detail``: the
        driver's one-line error, without SQL or parameters; ``shared``: False for a call
        on a connection of its own, the process heartbeat's).

        A failure of the heartbeat's own connection alone (its reconnect refused with
        "too many connections") is counted and logged on its own, throttled, but is not
        an outage of the database: it started one every beat and the next pooled call
        ended it, so the log and ``botkit_database_up`` flapped. When the database is
        away, the pooled calls say so."""
        self._by_reason[reason.name] += 1
        if not shared:
            self._beat_failing = True
            if not self._silent:
                self._beat_warning.warn(reason, detail)
            return
        if self._down_since is None:
            self._down_since = self._clock()
        self._failures += 1
        self._writes_failed = self._writes_failed or write
        if not self._silent:
            self._warning.warn(reason, detail)

    def succeeded(self, *, write: bool, shared: bool = True) -> None:
        """A call worked: if the database was away, say that it is back. A read does not
        end an outage of writes: a locked SQLite file, a full disk or a read-only
        standby still serve reads. A call on a connection of its own (``shared`` False:
        the process heartbeat) ends only its own failures (see ``failed``), never an
        outage the shared pool saw: with every pooled connection waiting (pool
        starvation, a locked table) it still succeeds, while customers' calls keep
        failing; it ended the outage every heartbeat, so the log and
        ``botkit_database_up`` flapped."""
        if not shared:
            if self._beat_failing:
                self._beat_failing = False
                self._beat_warning = self._beat_throttle()
                if not self._silent:
                    log.warning("the process heartbeat's own connection works again")
            return
        if self._down_since is None or (self._writes_failed and not write) or self._silent:
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
