"""The bot's retention pass: conversations inactive for ``[store] retention_days`` are
deleted with their messages, once an hour while ``botkit run`` serves, and so are the
outage spool's messages set aside (``unreadable/``) that were kept longer ago than that.

Every process of a deployment runs it; the deletes are idempotent, so replicas purging
at once delete each row once between them. The cutoff is the database's clock's on
PostgreSQL; a pass purges nothing (logged as an error) while a clock looks wrong (see
``botkit/store/_retention_clock.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from botkit._outage_spool import UNREADABLE, purge_unreadable
from botkit.errors import StoreError
from botkit.store import ConversationStore
from botkit.store._retention_clock import RetentionClockError

__all__ = ["RETENTION_PASS_SECONDS", "purge_once", "purge_spool_once", "retain_forever"]

_log = logging.getLogger("botkit.store")

RETENTION_PASS_SECONDS = 3600.0


async def purge_once(store: ConversationStore, days: int) -> None:
    """Delete what has been inactive for ``days`` days; log what went. A failure is
    logged and left for the next pass. While a clock looks wrong nothing is deleted, the
    outage spool's files neither (their times are this host's clock's too)."""
    try:
        before = await store.retention_cutoff(days)
    except RetentionClockError as exc:
        _log.error("retention: %s", exc)
        return
    except Exception as exc:  # the database failed: only the spool is purged this pass
        _failed(days, exc)
        before = None
    await purge_spool_once(store.settings.outage_spool_dir, days)
    if before is None:
        return
    try:
        deleted = await store.purge_inactive(before)
    except Exception as exc:
        _failed(days, exc)
        return
    if deleted.conversations or deleted.contacts:
        _log.info(
            "retention: deleted %d conversations (%d messages) and %d contacts inactive "
            "for %d days",
            deleted.conversations, deleted.messages, deleted.contacts, days,
        )  # fmt: skip


def _failed(days: int, exc: Exception) -> None:
    """Log a failed purge, left for the next pass: a bug with its trace."""
    if isinstance(exc, StoreError):
        _log.warning("retention: purging conversations older than %d days failed: %s", days, exc)
    else:
        _log.error("retention: purging conversations older than %d days failed", days, exc_info=exc)


async def purge_spool_once(spool_dir: str, days: int) -> int:
    """Delete the outage spool's messages set aside in ``spool_dir`` (``""``: none)
    more than ``days`` days ago; a failure is logged. Returns how many went."""
    if not spool_dir:
        return 0
    before = time.time() - days * 86_400
    try:
        gone = await asyncio.to_thread(purge_unreadable, Path(spool_dir), before)
    except OSError as exc:
        _log.warning("retention: cannot purge %s/%s: %s", spool_dir, UNREADABLE, exc)
        return 0
    if gone:
        _log.info(
            "retention: deleted %d kept messages set aside in %s/%s over %d days ago",
            gone, spool_dir, UNREADABLE, days,
        )  # fmt: skip
    return gone


async def retain_forever(
    store: ConversationStore, days: int, every: float = RETENTION_PASS_SECONDS
) -> None:
    """Purge now, then every ``every`` seconds, until cancelled."""
    while True:
        await purge_once(store, days)
        await asyncio.sleep(every)
