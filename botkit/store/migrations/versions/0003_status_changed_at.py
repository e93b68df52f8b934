"""``conversations.status_changed_at``: when the conversation entered its status.

The agents' queue (longest waiting first) ordered on ``updated_at``, which every message
moves: a customer who wrote "anyone there?" while waiting went to the back. Existing rows
take their ``updated_at``, the best value there is.

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
    # Nullable, as 0002's column: a plain ADD COLUMN on both databases, and a process of
    # the previous version still running during an upgrade inserts rows without it
    # (readers fall back to updated_at).
    op.add_column("conversations", sa.Column("status_changed_at", TS, nullable=True))
    op.execute("UPDATE conversations SET status_changed_at = updated_at")


def downgrade() -> None:
    op.drop_column("conversations", "status_changed_at")
