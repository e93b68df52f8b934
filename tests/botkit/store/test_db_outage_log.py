"""The store's outage log: one warning when the database goes away, one a minute while
it stays away, one line when it is back, and the next outage reported at once."""

from __future__ import annotations

import logging

import pytest

from botkit.store._outage import OUTAGE_REASONS, OutageLog, OutageReason

UNREACHABLE = OutageReason("unreachable", "the database server cannot be reached")
STARTING = OutageReason("shutdown", "the database refuses work (SQLSTATE 57P03)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "botkit.store"]
    caplog.clear()
    return lines


def test_an_outage_is_logged_once_a_minute_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="botkit.store")
    clock = Clock()
    outage = OutageLog("postgresql+asyncpg://bot:***@db/botkit", clock=clock)
    outage.succeeded(write=True)
    assert _lines(caplog) == []  # nothing to report while it works

    outage.failed(UNREACHABLE, "ConnectionRefusedError: x", write=True)
    (first,) = _lines(caplog)
    assert first.startswith("the database at postgresql+asyncpg://bot:***@db/botkit is unavailable")
    assert "the database server cannot be reached: ConnectionRefusedError: x" in first
    for _ in range(99):
        clock.now += 0.5
        outage.failed(UNREACHABLE, "x", write=True)
    assert _lines(caplog) == []
    clock.now += 11
    outage.failed(UNREACHABLE, "x", write=True)
    (again,) = _lines(caplog)
    assert again.endswith("(99 more since the last warning)")

    outage.succeeded(write=False)  # a read: writes may still fail (a locked file)
    assert _lines(caplog) == []
    clock.now += 5
    outage.succeeded(write=True)
    assert _lines(caplog) == [
        "the database answers again after 65.5 s unavailable (101 calls failed meanwhile)"
    ]
    outage.succeeded(write=True)
    assert _lines(caplog) == []

    clock.now += 1  # a new outage within the minute: reported at once all the same
    outage.failed(STARTING, "y", write=False)
    assert len(_lines(caplog)) == 1
    outage.succeeded(write=False)  # only reads had failed: a read ends it
    assert [line.split(" after")[0] for line in _lines(caplog)] == ["the database answers again"]


def test_the_outage_state_and_failed_calls_by_reason_are_kept_for_the_metrics() -> None:
    outage = OutageLog("sqlite:///bot.db", clock=Clock())
    assert not outage.down
    assert outage.failures_by_reason == dict.fromkeys(OUTAGE_REASONS, 0)
    locked = OutageReason("locked", "the SQLite file is locked")
    outage.failed(locked, "x", write=True)
    outage.failed(locked, "x", write=True)
    outage.failed(UNREACHABLE, "x", write=False)
    assert outage.down
    outage.succeeded(write=False)  # reads work; writes failed: still away
    assert outage.down
    outage.succeeded(write=True)
    assert not outage.down
    counts = outage.failures_by_reason
    assert (counts["locked"], counts["unreachable"], sum(counts.values())) == (2, 1, 3)


def test_a_percent_encoded_url_is_logged_as_written(caplog: pytest.LogCaptureFixture) -> None:
    """The URL's query may hold percent-encoding (``options=-c%20lock_timeout%3D5s``): it
    was read as %-conversions, and the warning raised ValueError inside the store call."""
    caplog.set_level(logging.INFO, logger="botkit.store")
    where = "postgresql+asyncpg://bot:***@db/botkit?options=-c%20lock_timeout%3D5s"
    outage = OutageLog(where, clock=Clock())
    outage.failed(UNREACHABLE, "ConnectionRefusedError: x", write=True)
    (line,) = _lines(caplog)
    assert where in line


TOO_MANY = OutageReason("resources", "the database refuses work (SQLSTATE 53300)")


def test_what_only_the_heartbeats_own_connection_sees_is_no_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review 2, finding 6: the heartbeat's lazy reconnect refused ("too many
    connections") while the pool works started an outage every beat, and the next pooled
    call ended it: the log and ``botkit_database_up`` flapped."""
    caplog.set_level(logging.INFO, logger="botkit.store")
    clock = Clock()
    outage = OutageLog("postgresql+asyncpg://bot:***@db/botkit", clock=clock)
    for _ in range(3):  # a beat fails, a pooled call works, within a minute
        outage.failed(TOO_MANY, "TooManyConnectionsError: x", write=True, shared=False)
        assert not outage.down
        outage.succeeded(write=True)
        clock.now += 5
    (line,) = _lines(caplog)  # said once, on its own, throttled; no "answers again"
    assert "heartbeat's own connection" in line
    assert "answers again" not in line
    assert outage.failures_by_reason["resources"] == 3  # counted all the same

    outage.succeeded(write=True, shared=False)  # its connection works again: said once
    assert _lines(caplog) == ["the process heartbeat's own connection works again"]
    outage.succeeded(write=True, shared=False)
    assert _lines(caplog) == []

    # An outage of the pool is neither ended by a heartbeat that works, nor started
    # again by one that fails after the pool's calls work.
    outage.failed(UNREACHABLE, "x", write=True)
    _lines(caplog)
    outage.succeeded(write=True, shared=False)
    assert outage.down
    outage.succeeded(write=True)
    assert not outage.down
    assert [line.split(" after")[0] for line in _lines(caplog)] == ["the database answers again"]
