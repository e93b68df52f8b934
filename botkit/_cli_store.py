"""What the operators' commands that work on the database share (``botkit handoff``,
``botkit data``): their arguments checked as text, the store opened on a current schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from botkit.errors import StoreError
from botkit.store import ConversationStore, StoreSettings

__all__ = ["argument_text", "current_store"]


def argument_text(what: str, value: str, absent: str) -> str:
    """``value`` when it is UTF-8 text; else ``StoreError`` ("... ; ``absent``"): bytes
    the shell could not decode (surrogateescape) name nothing stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(f"the {what} is not valid UTF-8 text; {absent}") from None
    return value


@asynccontextmanager
async def current_store(settings: StoreSettings) -> AsyncIterator[ConversationStore]:
    """The store, open, on a schema this botkit knows (never upgraded here).

    Raises:
        SchemaOutdatedError, StoreError: see ``ConversationStore.ensure_schema``.
    """
    async with ConversationStore(settings) as store:
        await store.ensure_schema(auto_upgrade=False)
        yield store
