"""The cutoff of a retention purge, and when a clock is too wrong to compute one.

A purge deletes what was last active before ``now - retention_days``, irreversibly: a
clock stepped forward (a bad NTP source, a VM restored with a wrong hardware clock) by
89 days made a 90-day purge delete a conversation active two days before. So:

* PostgreSQL: ``now`` is the database's clock, the one every replica shares, and the
  purge refuses to run while this host's clock and the database's differ by more than
  ``CLOCK_MARGIN``: one of them is wrong, and nothing tells which.
* SQLite: the database's clock is this host's, so there is no second clock to compare
  with, and the host's is used. (The newest stored message is no witness: a bot that
  simply had no messages for a weekend would look like a clock that jumped, and stop
  purging, with an error each pass, until its next customer wrote.)

A refused purge deletes nothing (``RetentionClockError``); the next pass decides anew.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store._peers import PeerReads

__all__ = ["CLOCK_MARGIN", "RetentionClock", "RetentionClockError"]

# A purge then deletes at most this much too early (what an unnoticed skew within it
# costs), and a clock's usual errors (seconds; an hour of a wrong time zone setting)
# stay far within it.
CLOCK_MARGIN = timedelta(days=1)


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86_400:.1f} days"


class RetentionClockError(StoreError):
    """A purge refused to run: this host's clock disagrees with the database's
    (PostgreSQL)."""


class RetentionClock(PeerReads):
    """The cutoff of a retention purge (see the module docstring)."""

    async def retention_cutoff(self, days: int) -> datetime:
        """When what was last active before it has been inactive for ``days`` days.

        Raises:
            RetentionClockError: a clock is too wrong to tell (nothing may be purged).
            StoreError: the database failed.
        """
        host = utcnow()
        if self.dialect == "postgresql":
            database = await self.database_now()
            if abs(host - database) > CLOCK_MARGIN:
                raise RetentionClockError(
                    f"this host's clock ({host.isoformat()}) and the database's "
                    f"({database.isoformat()}) differ by {_days(abs(host - database))}: "
                    "purging nothing, as the wrong one would delete conversations still "
                    "within their retention period; fix the clock (NTP)"
                )
            return database - timedelta(days=days)
        return host - timedelta(days=days)
