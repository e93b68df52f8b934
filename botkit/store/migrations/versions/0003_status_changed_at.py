"""``conversations.status_changed_at``: when the conversation entered its status.

The agents' queue (longest waiting first) ordered on ``updated_at``, which every message
moves: a customer who wrote "anyone there?" while waiting went to the back. Rows without
the column (all existing ones, and those a previous version's process writes during an
upgrade) read as their ``updated_at``, the best value there is, and keep it on their next
write. No rows are rewritten, so on PostgreSQL this is a quick catalog change that does
not hold the table's lock while copying.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Nullable, as 0002's column: a plain ADD COLUMN on both databases.
    op.add_column("conversations", sa.Column("status_changed_at", TS, nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "status_changed_at")
