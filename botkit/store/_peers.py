"""What a process reads to keep in step with the others sharing its database.

Replicas (or the old and new processes of a rolling restart) each hold their own live
connections: a web visitor's socket is held by one process, a reply streams from the
process that writes it. What another process stores or changes reaches them only
through the database, so each looks, about once a second and only while it has peers:

* ``live_peers``: whether there is anybody to keep in step with at all;
* ``last_seqs``: the newest ``seq`` of the conversations its clients watch, to push
  them what a peer stored (an agent's message sent through a peer's API);
* ``statuses``: the status of the conversations it is replying to, to stop a reply
  once a peer's agent took the conversation over.

Each is one read, however many conversations it covers. On PostgreSQL the keys or ids
go as one array parameter, joined as a table (``unnest``): one statement, so one cached
plan, for any number of them, and a plan that stays a join when the server's statistics
are stale (an ``IN`` list or ``= ANY`` filter then tests every row of the channel against
every value: ~200 ms for 1,000 keys among 20,000 conversations, against ~3 ms).
SQLite has no arrays: it gets ``IN`` lists, in chunks under its bound-parameter limit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ARRAY, BigInteger, Select, String, bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstrumentedAttribute

from botkit.errors import StoreError
from botkit.store._checks import check_key
from botkit.store._processes import ProcessClaims
from botkit.store.models import Conversation, Process

__all__ = ["PeerReads"]

T = TypeVar("T")

# Values per IN list on SQLite: far below its limit on bound parameters (32,766).
CHUNK = 500


def _storable(key: str) -> bool:
    """Whether a conversation could be stored under ``key`` (PostgreSQL refuses a NUL
    even in a query's parameter)."""
    try:
        check_key(key, "conversation key")
    except StoreError:
        return False
    return True


def _chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class PeerReads(ProcessClaims):
    """The store's reads for keeping processes in step (see the module docstring)."""

    async def live_peers(self, process_id: str, fresh_for: timedelta) -> int:
        """How many other processes have written a heartbeat within ``fresh_for`` of
        now, by the database's clock (see ``botkit/store/_processes.py``): a peer on a
        host whose clock is behind was not counted when the reader's clock judged.

        Raises:
            StoreError: the database failed.
        """
        stmt = select(func.count()).where(
            Process.id != process_id, Process.heartbeat_at >= self._clock(fresh_for)
        )
        return int(await self._read(lambda conn: conn.execute(stmt).scalar_one()))

    def _select_among(
        self,
        columns: tuple[InstrumentedAttribute[Any], ...],
        column: InstrumentedAttribute[Any],
        values: Sequence[Any],
    ) -> Select[Any]:
        """``columns`` of the conversations whose ``column`` is one of ``values`` (see
        the module docstring for the two shapes)."""
        if self.dialect == "postgresql":
            item = String() if isinstance(values[0], str) else BigInteger()
            param = bindparam("b_values", list(values), type_=ARRAY(item))
            wanted = func.unnest(param).table_valued("value").render_derived(name="wanted")
            return select(*columns).select_from(wanted).join(Conversation, column == wanted.c.value)
        return select(*columns).where(column.in_(values))

    def _chunk_size(self, count: int) -> int:
        return count if self.dialect == "postgresql" else CHUNK

    async def last_seqs(self, channel: str, keys: Collection[str]) -> dict[str, int]:
        """The newest ``seq`` of each of the channel's conversations in ``keys``; keys of
        conversations that do not exist (or could not: empty, too long, with a NUL) are
        left out.

        Raises:
            StoreError: the database failed.
        """
        wanted = sorted(key for key in set(keys) if _storable(key))

        def work(conn: Connection) -> dict[str, int]:
            found: dict[str, int] = {}
            for chunk in _chunks(wanted, self._chunk_size(len(wanted))):
                columns = (Conversation.conversation_key, Conversation.last_seq)
                stmt = self._select_among(columns, Conversation.conversation_key, chunk)
                stmt = stmt.where(Conversation.channel == channel)
                found.update((key, seq) for key, seq in conn.execute(stmt))
            return found

        return await self._read(work) if wanted else {}

    async def statuses(self, conversation_ids: Collection[int]) -> dict[int, str]:
        """The status of each conversation in ``conversation_ids`` that exists.

        Raises:
            StoreError: the database failed.
        """
        wanted = sorted(set(conversation_ids))

        def work(conn: Connection) -> dict[int, str]:
            found: dict[int, str] = {}
            for chunk in _chunks(wanted, self._chunk_size(len(wanted))):
                columns = (Conversation.id, Conversation.status)
                stmt = self._select_among(columns, Conversation.id, chunk)
                found.update((cid, status) for cid, status in conn.execute(stmt))
            return found

        return await self._read(work) if wanted else {}
