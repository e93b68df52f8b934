"""Open the conversation store at start, waiting a while for a database that is not
there yet (for ``Bot.start``).

A bot started beside its database (``docker compose up``, a Kubernetes pod, a host
booting) often comes up first; PostgreSQL then refuses connections, or says it is
starting up, for some seconds. Failing at once would leave the restart to a supervisor
that may not retry (compose without ``restart:``) and log a fatal error that is no
fault. What waiting cannot cure (a wrong password, a missing database, an outdated
schema, a SQLite file that cannot be opened) still ends the start at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from botkit._backoff import doubling
from botkit._resume import Claims, RecoveryTiming
from botkit.errors import DatabaseUnavailableError
from botkit.store import ConversationStore

__all__ = ["open_store_waiting", "waiting_for_database"]

T = TypeVar("T")

_log = logging.getLogger("botkit.bot")

# Seconds between tries: the first wait, doubled up to the second.
RETRY_S = (1.0, 10.0)

# Outage reasons that time may cure (see ``botkit.store._outage.OUTAGE_REASONS``); the
# local SQLite failures (a full or failing disk, a file that cannot be opened) need the
# operator, so they are reported at once.
_WORTH_WAITING = frozenset(
    {
        "unreachable",
        "connection_lost",
        "pool_timeout",
        "connection",
        "resources",
        "shutdown",
        "read_only",
        "timeout",
        "locked",
    }
)


async def open_store_waiting(
    store: ConversationStore, timing: RecoveryTiming, *, auto_upgrade: bool, wait_s: float
) -> Claims:
    """Open ``store``, check (or upgrade) its schema and register this process, trying
    again for up to ``wait_s`` seconds while the database is unavailable.

    Raises:
        DatabaseUnavailableError: still unavailable after ``wait_s`` seconds.
        SchemaOutdatedError, StoreError: as ``ConversationStore.open`` and
            ``ensure_schema``, at once.
    """

    async def attempt() -> Claims:
        await store.open()  # (once open, the next try goes on from here)
        await store.ensure_schema(auto_upgrade=auto_upgrade)
        claims = Claims(store, timing)
        await claims.register()
        return claims

    # The store's own outage warning speaks of refused messages and waiting replies:
    # nothing is received yet, and the wait says what it does.
    with store.outage.reported_by_caller():
        return await waiting_for_database(attempt, wait_s=wait_s, where=store.settings.safe_url)


async def waiting_for_database(
    attempt: Callable[[], Awaitable[T]], *, wait_s: float, where: str
) -> T:
    """``attempt()``, tried again for up to ``wait_s`` seconds while it fails because the
    database (``where``: its URL, safe to log) is unavailable for a reason that time
    may cure (one warning a try). The warnings and the final error name the database.

    ``attempt`` must be safe to run again after an outage cut it at any point (one
    transaction, or steps that are each idempotent).

    Raises:
        DatabaseUnavailableError: still unavailable after ``wait_s`` seconds.
        StoreError: any other failure, at once.
    """
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + wait_s
    delays = doubling(*RETRY_S)
    tries = 0
    while True:
        tries += 1
        try:
            result = await attempt()
        except DatabaseUnavailableError as exc:
            left = give_up_at - loop.time()
            if exc.reason not in _WORTH_WAITING:
                raise
            problem = str(exc) if where in str(exc) else f"the database at {where}: {exc}"
            if left <= 0:
                if wait_s > 0:
                    problem += f" (still, after waiting {wait_s:g} s: [store] start_wait_seconds)"
                raise DatabaseUnavailableError(problem, reason=exc.reason) from exc
            delay = min(next(delays), left)
            _log.warning(
                "waiting for the database: %s; trying again in %.0f s (for up to %.0f s "
                "more: [store] start_wait_seconds)",
                problem,
                delay,
                left,
            )
            await asyncio.sleep(delay)
            continue
        if tries > 1:
            _log.warning("the database answers after %d tries", tries)
        return result
