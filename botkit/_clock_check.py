"""Whether this host's clock agrees with the database's.

Liveness is judged by the database's clock alone (heartbeats, see
``botkit/store/_processes.py``), but other times are still this host's: when a message
was stored (``resume_unanswered_seconds`` counts from it), when a conversation was last
active (retention counts from it), when it entered its status. A host whose clock is off
stores them off, which an operator should hear about: once, not at every heartbeat.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

__all__ = ["SKEW_WARNING", "ClockCheck", "skew"]

# Well above what a round trip and NTP's slew leave (milliseconds), well below the
# heartbeat's stale period (30 s) and what would move a message in or out of a window.
SKEW_WARNING = timedelta(seconds=5)

_log = logging.getLogger("botkit.bot")


def skew(before: datetime, database: datetime, after: datetime) -> timedelta:
    """How far ``database`` (the database's time, read by a call that this host's clock
    saw start at ``before`` and end at ``after``) lies outside that interval: positive
    when the database is ahead, zero when inside it (a slow round trip is no skew)."""
    if database > after:
        return database - after
    if database < before:
        return database - before
    return timedelta(0)


class ClockCheck:
    """Warns once when this host's clock and the database's differ by more than
    ``SKEW_WARNING``, and says so again (at INFO) once they agree."""

    def __init__(self) -> None:
        self._off = False

    def compare(self, before: datetime, database: datetime, after: datetime) -> None:
        """Compare the database's time ``database`` with this host's ``before`` and
        ``after`` around the call that read it (see ``skew``)."""
        off = skew(before, database, after)
        if abs(off) > SKEW_WARNING:
            if not self._off:
                self._off = True
                host, way = (after, "behind") if off > timedelta(0) else (before, "ahead of")
                _log.warning(
                    "this host's clock (%s) is %.1f s %s the database's (%s): heartbeats "
                    "are judged by the database's clock, but the times this host stores "
                    "(when a message arrived, when a conversation was last active) are "
                    "off by as much; check NTP on this host and on the database's",
                    host.isoformat(), abs(off.total_seconds()), way, database.isoformat(),
                )  # fmt: skip
        # Re-armed only well within the limit: a skew hovering around it logs once.
        elif self._off and abs(off) <= SKEW_WARNING / 2:
            self._off = False
            _log.info("this host's clock agrees with the database's again")
