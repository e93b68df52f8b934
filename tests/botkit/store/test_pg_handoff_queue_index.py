"""The agents' queue reads a partial index, not the whole table (audit-pg finding 7):
``conversations_with_status`` on 20,000 conversations, five of them with a human, is
planned on ``ix_conversations_handoff_queue`` (migration 0008) on PostgreSQL, and the
index is there on SQLite too."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from botkit.store import ConversationStore, StoreSettings

_POPULATE = """
INSERT INTO contacts (channel, external_id, created_at, updated_at)
SELECT 'web', 'visitor' || g, now(), now() FROM generate_series(1, 20000) g;
INSERT INTO conversations
    (channel, conversation_key, contact_id, status, last_seq, created_at, updated_at,
     status_changed_at)
SELECT 'web', 'visitor' || c.id, c.id,
    CASE WHEN c.id % 4000 = 0 THEN 'waiting_human' ELSE 'bot' END, 0,
    now() - c.id * interval '1 minute', now() - c.id * interval '1 minute', NULL
FROM contacts c;
ANALYZE contacts;
ANALYZE conversations;
"""


def _plan_text(rows: list[Any]) -> str:
    return json.dumps([json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows])


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("oldest_first", [True, False])
async def test_the_queue_is_planned_on_the_partial_index(
    migrated_db_url: str, oldest_first: bool
) -> None:
    dsn = migrated_db_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(_POPULATE)
        async with ConversationStore(StoreSettings(url=migrated_db_url)) as store:
            sent: list[tuple[str, Any]] = []
            engine = store._require()._engine.sync_engine  # type: ignore[attr-defined]

            def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
                if "FROM conversations" in statement:
                    sent.append((statement, params))

            event.listen(engine, "before_cursor_execute", capture)
            queue = await store.conversations_with_status(
                ["waiting_human", "with_human"], oldest_first=oldest_first
            )
            assert len(queue) == 5
        (statement, params), *_ = sent
        plan = await admin.fetch(f"EXPLAIN (FORMAT JSON) {statement}", *params)
        shown = _plan_text(plan)
        assert "ix_conversations_handoff_queue" in shown, shown
        assert "Seq Scan" not in shown, shown
    finally:
        await admin.close()


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("oldest_first", [True, False])
async def test_the_index_is_made_on_sqlite_too(migrated_db_url: str, oldest_first: bool) -> None:
    # The statement the store sends, with its parameters, as on PostgreSQL above (not a
    # hand-written copy, which could use the index while the store's does not).
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as store:
        sent: list[tuple[str, Any]] = []
        engine = store._require()._engine  # type: ignore[attr-defined]

        def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if "FROM conversations" in statement:
                sent.append((statement, params))

        event.listen(engine, "before_cursor_execute", capture)
        await store.conversations_with_status(
            ["waiting_human", "with_human"], oldest_first=oldest_first
        )
        event.remove(engine, "before_cursor_execute", capture)
        (statement, params), *_ = sent
        plan = await store._read(
            lambda conn: conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
        )
    assert "ix_conversations_handoff_queue" in str(plan), plan
