"""``customer_files``: the bytes of files customers send from the web widget.

A new table, so nothing existing is rewritten. Web customers have no platform that keeps
their files, so botkit keeps them in its own database: every replica sharing it can serve
them. Its rows go with their conversation (``ON DELETE CASCADE``): retention and erasure
need no extra step, though botkit also deletes them explicitly.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # No separate index on conversation_id: the unique constraint's index starts with it.
    op.create_table(
        "customer_files",
        sa.Column("id", ID, primary_key=True),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_customer_files_conversation_id_conversations", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customer_files"),
        sa.UniqueConstraint(
            "conversation_id", "client_id", name="uq_customer_files_conversation_id_client_id"
        ),
        sqlite_autoincrement=True,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("customer_files")
