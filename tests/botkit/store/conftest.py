"""Fixtures of the conversation-store tests (database fixtures live in tests/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from botkit.events import Contact, InboundMessage
from botkit.store import ConversationStore, StoreSettings

try:
    import pg_server
except ImportError:  # pragma: no cover - tests/ made a package
    from tests import pg_server  # type: ignore[no-redef]

MakeMessage = Callable[..., InboundMessage]


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The shared ``db_url`` (tests/conftest.py), declared again here because
    tests/botkit/conftest.py narrows ``db_url`` to one SQLite file for the core tests and
    the store tests must run on both databases."""
    with pg_server.test_database(
        db_backend, tmp_path, lambda: request.getfixturevalue("pg_server_url")
    ) as url:
        yield url


@pytest.fixture
async def store(migrated_db_url: str) -> AsyncIterator[ConversationStore]:
    """An open store on a migrated database (SQLite and PostgreSQL)."""
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as opened:
        yield opened


@pytest.fixture
def make_message() -> MakeMessage:
    """Build inbound messages with unique delivery keys unless one is given."""
    counter = itertools.count(1)

    def make(
        text: str = "hello",
        *,
        key: str | None = None,
        conversation: str = "conv-1",
        user: str = "user-1",
        channel: str = "web",
        language_hint: str | None = None,
        display_name: str | None = "Ann",
        channel_ids: dict[str, str] | None = None,
    ) -> InboundMessage:
        return InboundMessage(
            channel=channel,
            conversation_key=conversation,
            contact=Contact(channel, user, display_name, language_hint),
            text=text,
            idempotency_key=f"delivery-{next(counter)}" if key is None else key,
            channel_ids=channel_ids or {},
        )

    return make
