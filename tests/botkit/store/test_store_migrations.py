"""Alembic migrations: up, down, up again, on SQLite and PostgreSQL; models agree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import bindparam, insert, inspect, text
from sqlalchemy.engine import Connection

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore, StoreSettings, migrate
from botkit.store._runner import create_runner
from botkit.store.models import VERSION_TABLE, Base, Contact, Conversation, Message, UTCDateTime

TABLES = {
    "contacts",
    "conversations",
    "messages",
    "inbound_keys",
    "processes",
    "feedback",
    "customer_files",
    "session_keys",
}


async def _tables(url: str) -> set[str]:
    runner = create_runner(url, pooled=False)
    try:
        names: list[str] = await runner.read(lambda conn: inspect(conn).get_table_names())
        return set(names)
    finally:
        await runner.dispose()


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert await migrate.current(db_url) is None
    assert not await migrate.is_up_to_date(db_url)

    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
    assert await migrate.is_up_to_date(db_url)
    assert await _tables(db_url) == TABLES | {VERSION_TABLE}

    await migrate.downgrade(db_url, "base")
    assert await migrate.current(db_url) is None
    assert await _tables(db_url) <= {VERSION_TABLE}

    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
    assert await _tables(db_url) == TABLES | {VERSION_TABLE}


async def test_upgrade_twice_is_a_no_op(migrated_db_url: str) -> None:
    await migrate.upgrade(migrated_db_url)
    assert await migrate.current(migrated_db_url) == migrate.head()


async def test_concurrent_upgrades_both_succeed(db_url: str) -> None:
    # Two bots starting at once: one migrates, the other waits and finds it done.
    await asyncio.gather(migrate.upgrade(db_url), migrate.upgrade(db_url))
    assert await migrate.current(db_url) == migrate.head()


async def test_migrated_schema_matches_the_models(migrated_db_url: str) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        return list(compare_metadata(context, Base.metadata))

    runner = create_runner(migrated_db_url, pooled=False)
    try:
        differences = await runner.read(diff)
    finally:
        await runner.dispose()
    assert differences == []


async def test_unknown_revision_is_a_store_error(db_url: str) -> None:
    with pytest.raises(StoreError, match="migration failed"):
        await migrate.upgrade(db_url, "no-such-revision")


def test_migrations_ship_inside_the_package() -> None:
    assert migrate.MIGRATIONS_DIR.parent.name == "store"
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert list((migrate.MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    assert migrate.head() == "0009"
    for revision in ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"):
        assert migrate.is_known(revision)
    assert not migrate.is_known("ffff")


async def test_store_writes_need_the_schema(db_url: str, make_message: Any) -> None:
    # Nothing creates tables behind Alembic's back: an unmigrated database fails clearly.
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        with pytest.raises(StoreError, match="database write failed"):
            await store.intake(make_message(), text="hi")


async def test_claims_migration_up_down_up_and_unclaimed_messages_are_recoverable(
    db_url: str, make_message: Any
) -> None:
    # 0001 -> 0002 adds a nullable column: a message without a claim (as every row
    # stored before the upgrade) may be taken by recovery; a downgrade drops it again.
    await migrate.upgrade(db_url, "0001")
    await migrate.upgrade(db_url)
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        stored = await store.intake(make_message("left over"), text="left over")
        claimable = await store.unanswered(
            since=utcnow() - timedelta(minutes=1), stale_before=utcnow(), exclude_claimer="me"
        )
        assert [(u.message.id, u.claimed_by) for u in claimable] == [(stored.message.id, None)]
    await migrate.downgrade(db_url, "0001")
    later = {"processes", "feedback", "customer_files", "session_keys"}
    assert await _tables(db_url) == TABLES - later | {VERSION_TABLE}

    def columns(conn: Connection) -> set[str]:
        return {c["name"] for c in inspect(conn).get_columns("messages")}

    runner = create_runner(db_url, pooled=False)
    try:
        assert "claimed_by" not in await runner.read(columns)
    finally:
        await runner.dispose()
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()


async def test_status_since_migration_fills_old_rows_and_goes_back(
    db_url: str, make_message: Any
) -> None:
    """0002 -> 0003 adds ``status_changed_at`` without rewriting rows: a row without it (any
    row from before, or one a previous version's process writes during the upgrade) reads
    as its ``updated_at`` and keeps that on later writes; a downgrade drops it."""
    await migrate.upgrade(db_url, "0002")
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        with pytest.raises(StoreError):  # this version writes the new column
            await store.intake(make_message(conversation="old"), text="hi")
    runner = create_runner(db_url, pooled=False)

    def old_row(conn: Connection) -> None:  # what a 0002 process writes
        at = bindparam("t", datetime(2026, 1, 1, 10, tzinfo=UTC), type_=UTCDateTime())
        conn.execute(text(
            "INSERT INTO contacts (channel, external_id, created_at, updated_at) "
            "VALUES ('web', 'u-old', :t, :t)").bindparams(at))  # fmt: skip
        conn.execute(text(
            "INSERT INTO conversations (channel, conversation_key, contact_id, status, "
            "last_seq, created_at, updated_at) SELECT 'web', 'old', id, 'waiting_human', 0, "
            ":t, :t FROM contacts WHERE external_id = 'u-old'").bindparams(at))  # fmt: skip

    try:
        await runner.write(old_row)
    finally:
        await runner.dispose()
    await migrate.upgrade(db_url)
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        (old,) = await store.conversations_with_status(["waiting_human"], oldest_first=True)
        assert old.status_since == old.updated_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
        # The customer writes again while waiting, the status is set again: it keeps the
        # time it had (no column yet: its old updated_at), and a real change moves it.
        await store.intake(make_message("anyone?", conversation="old", user="u-old"), text="x")
        await store.set_conversation_status(old.id, "waiting_human")
        again = await store.conversation_by_id(old.id)
        assert again.status_since == old.status_since and again.updated_at > old.updated_at
        moved = await store.set_conversation_status(old.id, "with_human")
        assert moved.status_since is not None and moved.status_since > old.status_since
    await migrate.downgrade(db_url, "0002")

    def columns(conn: Connection) -> set[str]:
        return {c["name"] for c in inspect(conn).get_columns("conversations")}

    runner = create_runner(db_url, pooled=False)
    try:
        assert "status_changed_at" not in await runner.read(columns)
    finally:
        await runner.dispose()


def _received_0003(conn: Connection, key: str, user: str, words: str) -> dict[str, int]:
    """A customer's first message in a new conversation, as a 0003 process stored it."""
    now = utcnow()
    ids = {"contact": conn.execute(
        insert(Contact).values(channel="web", external_id=user, created_at=now, updated_at=now)
        .returning(Contact.id)).scalar_one()}  # fmt: skip
    ids["conversation"] = conn.execute(
        insert(Conversation).values(
            channel="web", conversation_key=key, contact_id=ids["contact"], status="bot",
            last_seq=1, created_at=now, updated_at=now, status_changed_at=now,
        ).returning(Conversation.id)).scalar_one()  # fmt: skip
    ids["message"] = conn.execute(
        insert(Message).values(
            conversation_id=ids["conversation"], seq=1, direction="in", text=words,
            status="received", created_at=now, contact_id=ids["contact"], extra={},
        ).returning(Message.id)).scalar_one()  # fmt: skip
    return ids


async def test_ids_of_deleted_rows_are_never_reused_after_0004(
    db_url: str, make_message: Any
) -> None:
    # A database written before 0004 keeps its rows; afterwards a deleted conversation's
    # or message's id never comes back (SQLite used to hand out the largest rowid + 1).
    await migrate.upgrade(db_url, "0003")
    # Rows as a 0003 process wrote them (this version's store writes later columns).
    runner = create_runner(db_url, pooled=False)
    try:
        kept = await runner.write(lambda conn: _received_0003(conn, "a", "u1", "kept"))
        gone = await runner.write(lambda conn: _received_0003(conn, "b", "u2", "gone"))
    finally:
        await runner.dispose()
    await migrate.upgrade(db_url)
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        assert [m.text for m in await store.messages_after("web", "a", 0)] == ["kept"]
        await store.forget_contact("web", "u2")
        new = await store.intake(make_message("new", conversation="c", user="u3"), text="new")
        assert new.conversation.id > gone["conversation"] > kept["conversation"]
        assert new.message.id > gone["message"]
        assert new.contact is not None
        assert new.contact.id > gone["contact"]
        # Recovery's partial index survived the rebuild, WHERE clause and all.
        recovering = await store.unanswered(
            since=utcnow() - timedelta(minutes=1), stale_before=utcnow(), exclude_claimer="me"
        )
        assert {u.message.text for u in recovering} == {"kept", "new"}

    def index_sql(conn: Connection) -> str:
        if conn.dialect.name != "sqlite":
            return "WHERE (postgresql: a partial index is not rebuilt)"
        row = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_messages_unanswered'"
        ).one()
        return str(row[0])

    runner = create_runner(db_url, pooled=False)
    try:
        assert "WHERE" in await runner.read(index_sql)
    finally:
        await runner.dispose()
    await migrate.downgrade(db_url, "0003")
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
