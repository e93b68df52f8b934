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

Each is one indexed read, however many conversations it covers (in chunks that stay
under every driver's bound-parameter limit).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from botkit.errors import StoreError
from botkit.store._checks import check_key
from botkit.store._processes import ProcessClaims
from botkit.store.models import Conversation, Process

__all__ = ["PeerReads"]

T = TypeVar("T")

# Values per IN list: far below SQLite's (32,766) and asyncpg's (32,767) limits on bound
# parameters, and small enough that each statement plans as index lookups.
CHUNK = 500


def _storable(key: str) -> bool:
    """Whether a conversation could be stored under ``key`` (PostgreSQL refuses a NUL
    even in a query's parameter)."""
    try:
        check_key(key, "conversation key")
    except StoreError:
        return False
    return True


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class PeerReads(ProcessClaims):
    """The store's reads for keeping processes in step (see the module docstring)."""

    async def live_peers(self, process_id: str, beat_since: datetime) -> int:
        """How many other processes have written a heartbeat since ``beat_since``.

        Raises:
            StoreError: the database failed.
        """
        stmt = select(func.count()).where(
            Process.id != process_id, Process.heartbeat_at >= beat_since
        )
        return int(await self._read(lambda conn: conn.execute(stmt).scalar_one()))

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
            for chunk in _chunks(wanted):
                stmt = select(Conversation.conversation_key, Conversation.last_seq).where(
                    Conversation.channel == channel, Conversation.conversation_key.in_(chunk)
                )
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
            for chunk in _chunks(wanted):
                stmt = select(Conversation.id, Conversation.status).where(
                    Conversation.id.in_(chunk)
                )
                found.update((cid, status) for cid, status in conn.execute(stmt))
            return found

        return await self._read(work) if wanted else {}
