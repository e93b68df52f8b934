"""Intake on PostgreSQL when the customer's contact is deleted under it: the retention
purge (a contact left without conversations) or ``botkit data forget`` commits the
DELETE after intake read the contact (an unlocked read) and before it wrote the rows
naming it. The foreign-key violation that follows is a race like a duplicate delivery:
intake goes round again, creates the contact anew and stores the message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from conftest import MakeMessage
from sqlalchemy import select
from sqlalchemy.engine import Connection

from botkit.store import ConversationStore
from botkit.store import _queries as q
from botkit.store.models import Contact, Conversation, InboundKey, Message
from botkit.store.records import ContactRecord

try:
    from pg_server import run_async
except ImportError:  # pragma: no cover - tests/ made a package
    from tests.pg_server import run_async  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True),
]


def _delete_contact_elsewhere(dsn: str, contact_id: int) -> None:
    """Another process's purge deletes the contact and commits (its own connection)."""

    async def purge() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM contacts WHERE id = $1", contact_id)
        finally:
            await conn.close()

    run_async(purge())


@pytest.fixture
def purged_before_claim(
    migrated_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[int]]:
    """Every intake's contact is deleted right before its conversation is claimed;
    yields the ids deleted."""
    dsn = migrated_db_url.replace("postgresql+asyncpg://", "postgresql://")
    real = q.claim_seq
    deleted: list[int] = []

    def claim(conn: Connection, channel: str, key: str, contact: ContactRecord, *a: Any) -> Any:
        if not deleted:  # once: the next round's contact is left alone
            _delete_contact_elsewhere(dsn, contact.id)
            deleted.append(contact.id)
        return real(conn, channel, key, contact, *a)

    monkeypatch.setattr(q, "claim_seq", claim)
    yield deleted


async def _orphan_contact(store: ConversationStore, make_message: MakeMessage) -> None:
    """A contact whose only conversation the purge deleted (its first step)."""
    await store.intake(make_message("first"), text="first")

    def drop(conn: Connection) -> None:
        for table in (InboundKey, Message, Conversation):
            conn.execute(table.__table__.delete())

    await store._write(drop)


async def test_a_new_conversation_whose_contact_was_just_purged_is_stored(
    store: ConversationStore, make_message: MakeMessage, purged_before_claim: list[int]
) -> None:
    await _orphan_contact(store, make_message)
    purged_before_claim.clear()

    result = await store.intake(make_message("hello again"), text="hello again")

    assert purged_before_claim and result.contact is not None
    assert result.contact.id != purged_before_claim[0]  # created anew
    assert result.new_conversation and result.message.text == "hello again"
    stmt = select(Contact.id, Conversation.contact_id).join(
        Conversation, Conversation.contact_id == Contact.id
    )
    rows = await store._read(lambda conn: conn.execute(stmt).all())
    assert [tuple(r) for r in rows] == [(result.contact.id, result.contact.id)]


async def test_a_message_in_an_existing_conversation_whose_writer_was_purged_is_stored(
    store: ConversationStore, make_message: MakeMessage, purged_before_claim: list[int]
) -> None:
    """A group conversation another customer started: the message names its writer's
    contact, deleted (``data forget`` of that writer) while it was being stored."""
    purged_before_claim.append(0)  # not yet
    await store.intake(make_message("hi", user="starter"), text="hi")
    await store.intake(make_message("me too", user="writer"), text="me too")
    purged_before_claim.clear()

    result = await store.intake(make_message("still me", user="writer"), text="still me")

    assert purged_before_claim and result.contact is not None
    assert result.contact.id != purged_before_claim[0]
    assert result.message.contact_id == result.contact.id and result.message.seq == 3
