"""Migration 0009 (``conversations.status_seq``) on SQLite and PostgreSQL: rows waiting
for or with a human get the newest ``seq`` stored before they entered their status (and
a ``status_changed_at`` if they had none), so who has them reads as it did; other rows
get 0; a downgrade drops the column and keeps the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection

from botkit.store import ConversationStore, StoreSettings, migrate
from botkit.store._handoffs import ConversationTakenError
from botkit.store._runner import create_runner
from botkit.store.models import Contact, Conversation, Message

T = datetime(2026, 1, 1, 10, tzinfo=UTC)


def _conversation(
    conn: Connection,
    key: str,
    status: str,
    changed: datetime | None,
    messages: list[tuple[str, str | None, datetime]],
) -> None:
    """A conversation as a 0008 process wrote it, with ``messages`` (direction, agent,
    created_at) numbered from 1."""
    contact = conn.execute(
        insert(Contact)
        .values(channel="web", external_id=f"u-{key}", created_at=T, updated_at=T)
        .returning(Contact.id)
    ).scalar_one()
    cid = conn.execute(
        insert(Conversation)
        .values(
            channel="web",
            conversation_key=key,
            contact_id=contact,
            status=status,
            last_seq=len(messages),
            created_at=T,
            updated_at=messages[-1][2],
            status_changed_at=changed,
        )
        .returning(Conversation.id)
    ).scalar_one()
    for seq, (direction, agent, at) in enumerate(messages, 1):
        conn.execute(
            insert(Message).values(
                conversation_id=cid,
                seq=seq,
                direction=direction,
                text=f"m{seq}",
                status="sent" if direction == "out" else "answered",
                created_at=at,
                contact_id=contact if direction == "in" else None,
                extra=None if agent is None else {"agent": agent},
            )
        )


def _old_rows(conn: Connection) -> None:
    # Handed over at T: Ann wrote in the previous hand-off, Bob in this one.
    _conversation(
        conn,
        "a",
        "with_human",
        T,
        [
            ("in", None, T - timedelta(seconds=10)),
            ("out", "Ann", T - timedelta(seconds=5)),
            ("out", "Bob", T + timedelta(seconds=3)),
        ],
    )
    # From before 0003: read as handed over at its updated_at, Ann's message's time.
    _conversation(
        conn,
        "b",
        "with_human",
        None,
        [
            ("in", None, T - timedelta(seconds=10)),
            ("out", "Ann", T + timedelta(seconds=2)),
        ],
    )
    _conversation(conn, "c", "bot", None, [("in", None, T)])


async def _write(url: str, fn: Any) -> Any:
    runner = create_runner(url, pooled=False)
    try:
        return await runner.write(fn)
    finally:
        await runner.dispose()


async def test_status_seq_is_filled_for_handoffs_and_dropped_on_downgrade(db_url: str) -> None:
    await migrate.upgrade(db_url, "0008")
    await _write(db_url, _old_rows)
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == "0009"

    def rows(conn: Connection) -> dict[str, tuple[Any, ...]]:
        stmt = select(
            Conversation.conversation_key, Conversation.status_seq, Conversation.status_changed_at
        )
        return {r[0]: tuple(r[1:]) for r in conn.execute(stmt)}

    found = await _write(db_url, rows)
    assert found == {
        "a": (2, T),
        "b": (1, T + timedelta(seconds=2)),
        "c": (0, None),  # not in a hand-off: left as it was
    }
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        ids = {c.key: c.id for c in await store.conversations_with_status(["with_human"])}
        assert await store.conversation_agent(ids["a"]) == "Bob"
        assert await store.conversation_agent(ids["b"]) == "Ann"
        b = await store.conversation_by_id(ids["b"])
        await store.append_outbound(ids["b"], "more", agent="Ann", held_since=b.status_since)
        with pytest.raises(ConversationTakenError):
            await store.append_outbound(ids["b"], "mine", agent="Bob", exclusive=True)

    await migrate.downgrade(db_url, "0008")

    def columns(conn: Connection) -> set[str]:
        return {c["name"] for c in inspect(conn).get_columns("conversations")}

    assert "status_seq" not in await _write(db_url, columns)
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
    again = await _write(db_url, rows)
    assert again["a"] == (2, T) and again["c"] == (0, None)
