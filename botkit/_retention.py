"""The bot's retention pass: conversations inactive for ``[store] retention_days`` are
deleted with their messages, once an hour while ``botkit run`` serves.

Every process of a deployment runs it; the deletes are idempotent, so replicas purging
at once delete each row once between them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore

__all__ = ["RETENTION_PASS_SECONDS", "purge_once", "retain_forever"]

_log = logging.getLogger("botkit.store")

RETENTION_PASS_SECONDS = 3600.0


async def purge_once(store: ConversationStore, days: int) -> None:
    """Delete what has been inactive for ``days`` days; log what went. A failure is
    logged and left for the next pass."""
    try:
        deleted = await store.purge_inactive(utcnow() - timedelta(days=days))
    except StoreError as exc:
        _log.warning("retention: purging conversations older than %d days failed: %s", days, exc)
        return
    except Exception:  # a bug: logged with its trace, and the next pass tries again
        _log.exception("retention: purging conversations older than %d days failed", days)
        return
    if deleted.conversations or deleted.contacts:
        _log.info(
            "retention: deleted %d conversations (%d messages) and %d contacts inactive "
            "for %d days",
            deleted.conversations, deleted.messages, deleted.contacts, days,
        )  # fmt: skip


async def retain_forever(
    store: ConversationStore, days: int, every: float = RETENTION_PASS_SECONDS
) -> None:
    """Purge now, then every ``every`` seconds, until cancelled."""
    while True:
        await purge_once(store, days)
        await asyncio.sleep(every)
