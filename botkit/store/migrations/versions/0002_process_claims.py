"""Process claims: a ``processes`` table with heartbeats and ``messages.claimed_by``.

Recovery takes over a message only when the process that claimed it is gone (its row
deleted on a clean close, or its heartbeat stale after a crash), so two processes on
one database never answer one message twice.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
TS = sa.DateTime(timezone=True)
PROCESS_ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", PROCESS_ID, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    # A nullable column without a default: a plain ALTER TABLE ... ADD COLUMN on both
    # databases (no SQLite table rebuild, no rewrite of existing rows). Rows stored
    # before the upgrade have no claim, so recovery may take them as before.
    op.add_column("messages", sa.Column("claimed_by", PROCESS_ID, nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (Python 3.11's sqlite3 ships newer).
    op.drop_column("messages", "claimed_by")
    op.drop_table("processes")
