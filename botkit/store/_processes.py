"""Which process is answering which message: process rows, heartbeats and claims.

Time alone cannot tell whether another process is still answering a message (a reply
may take a minute; a replica is not stopping at all). A claim can: every inbound
message is stored with the id of the process that answers it (``messages.claimed_by``,
in intake's INSERT), and every process keeps a row in ``processes`` fresh while it
runs. Recovery takes a message over only when its claimer's row is gone (a clean close
deletes it once its replies finished or were cancelled) or its heartbeat is stale (a
crash), and it does so with a compare-and-set UPDATE: of two processes recovering the
same message at once, exactly one changes the row, and only that one answers.

Heartbeats are written and judged by one clock, the database's: on PostgreSQL its
``now()``, computed in the statements themselves. Replicas run on hosts whose clocks
differ; with each host's own clock a host 60 s behind looked dead right after it beat
(its messages answered twice), one a day ahead pruned every live row as it started,
and a peer behind was not counted by ``live_peers``. On SQLite every process shares
the file's host, hence its clock: the host's time is the database's there (SQLite's own
``CURRENT_TIMESTAMP`` has no microseconds and not ``UTCDateTime``'s text format, so
comparing the two as text would be wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Interval,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection

from botkit.events import utcnow
from botkit.store._database import Database
from botkit.store.models import Message, Process, UTCDateTime
from botkit.store.records import MessageStatus, ProcessRecord

__all__ = ["PROCESS_ROWS_KEPT", "ProcessClaims"]

# A process that crashed leaves its row behind; it no longer protects anything once its
# heartbeat is stale, so it is kept only for operators looking at the table, then
# deleted by the next process that registers.
PROCESS_ROWS_KEPT = timedelta(days=1)

_FORGET = delete(Process).where(Process.id == bindparam("b_id"))
# Compare-and-set: the row changes only if nobody re-claimed it since it was read
# (IS NOT DISTINCT FROM also matches a NULL claim; SQLAlchemy writes it as "IS" on SQLite).
_RECLAIM = (
    update(Message)
    .where(
        Message.id == bindparam("b_id"),
        Message.status == MessageStatus.RECEIVED.value,
        Message.claimed_by.is_not_distinct_from(bindparam("b_old")),
    )
    .values(claimed_by=bindparam("b_new"))
)


class ProcessClaims(Database):
    """The store's part of crash recovery across processes (see the module docstring)."""

    def _clock(self, ago: timedelta = timedelta(0)) -> ColumnElement[datetime] | datetime:
        """The database's time ``ago`` earlier, for a statement (see the module
        docstring): ``now()`` on PostgreSQL, this host's time on SQLite."""
        if self.dialect != "postgresql":
            return utcnow() - ago
        now = type_coerce(func.now(), UTCDateTime())
        return type_coerce(now - literal(ago, Interval()), UTCDateTime()) if ago else now

    async def database_now(self) -> datetime:
        """The database's clock now (see the module docstring); no round trip on SQLite.

        Raises:
            StoreError: the database failed.
        """
        now = self._clock()
        if isinstance(now, datetime):
            return now
        stmt = select(now)
        return await self._read(lambda conn: conn.execute(stmt).scalar_one())

    async def register_process(self, process: ProcessRecord) -> datetime:
        """Add this process's row (heartbeat now), deleting rows of processes silent for
        longer than ``PROCESS_ROWS_KEPT``, both by the database's clock.

        Returns:
            The heartbeat written: the database's time.

        Raises:
            StoreError: the database failed.
        """
        prune = delete(Process).where(Process.heartbeat_at < self._clock(PROCESS_ROWS_KEPT))
        add = (
            insert(Process)
            .values(
                id=process.id,
                host=process.host[:255],
                pid=process.pid,
                started_at=process.started_at,
                heartbeat_at=self._clock(),
            )
            .returning(Process.heartbeat_at)
        )

        def work(conn: Connection) -> datetime:
            conn.execute(prune)
            # (A try again after a COMMIT that was cut may find the row stored already.)
            conn.execute(delete(Process).where(Process.id == process.id))
            return conn.execute(add).scalar_one()

        return await self._write(work)

    async def heartbeat(self, process_id: str) -> datetime | None:
        """Record that the process is alive, by the database's clock; None when its row
        is gone (it was pruned or deleted: its claims no longer protect its messages, so
        the caller registers again; this never inserts, see ``botkit._resume.Claims``).

        Returns:
            The heartbeat written (the database's time), or None.

        Raises:
            StoreError: the database failed.
        """
        beat = (
            update(Process)
            .where(Process.id == bindparam("b_id"))
            .values(heartbeat_at=self._clock())
            .returning(Process.heartbeat_at)
        )
        params = {"b_id": process_id}
        return await self._write(
            lambda conn: conn.execute(beat, params).scalar_one_or_none(), heartbeat=True
        )

    async def unregister_process(self, process_id: str) -> None:
        """Delete the process's row: every message it claimed and left unanswered is
        recoverable by other processes at once.

        Raises:
            StoreError: the database failed.
        """
        await self._write(lambda conn: conn.execute(_FORGET, {"b_id": process_id}))

    async def reclaim(self, claims: Sequence[tuple[int, str | None]], process_id: str) -> set[int]:
        """Take over messages for ``process_id``, each only if it is still ``received``
        and still claimed by the process named with it (as ``unanswered`` read it).

        Args:
            claims: (message id, claimer seen) pairs.
            process_id: the new claimer.

        Returns:
            The ids taken over; another process took the rest first.

        Raises:
            StoreError: the database failed.
        """

        def work(conn: Connection) -> set[int]:
            taken = set()
            for message_id, old in claims:
                params = {"b_id": message_id, "b_old": old, "b_new": process_id}
                if conn.execute(_RECLAIM, params).rowcount:
                    taken.add(message_id)
            return taken

        if not claims:
            return set()
        return await self._write(work)
