"""``ix_conversations_handoff_queue``: the agents' queue without a scan of every conversation.

A partial index on (when the conversation entered its status, id) of the conversations
waiting for or with a human, the order ``conversations_with_status`` reads them in. It
holds only those few rows, so the queue costs the same at a million conversations as at
a hundred. Building it reads the ``conversations`` table once and blocks writes to it
meanwhile (PostgreSQL's SHARE lock, about a second per million rows); a downgrade drops
it and changes no data.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
HANDOFF_WHERE = "status IN ('waiting_human', 'with_human')"


def upgrade() -> None:
    op.create_index(
        "ix_conversations_handoff_queue",
        "conversations",
        [sa.text("coalesce(status_changed_at, updated_at)"), "id"],
        sqlite_where=sa.text(HANDOFF_WHERE),
        postgresql_where=sa.text(HANDOFF_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_handoff_queue", table_name="conversations")
