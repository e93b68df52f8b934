"""``feedback``: customers' ratings of the bot's replies (the feedback plugin).

A new table, so nothing existing is rewritten. Its rows go with their conversation and
with the person who rated (``ON DELETE CASCADE``): retention and erasure need no extra
step, though botkit also deletes them explicitly.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", ID, primary_key=True),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("reply_seq", sa.Integer(), nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_feedback_conversation_id_conversations", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"],
            name="fk_feedback_contact_id_contacts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint(
            "conversation_id", "reply_seq", "contact_id",
            name="uq_feedback_conversation_id_reply_seq_contact_id",
        ),
        sa.CheckConstraint("rating IN ('good', 'bad')", name="ck_feedback_rating"),
        sqlite_autoincrement=True,
    )  # fmt: skip
    op.create_index("ix_feedback_contact_id", "feedback", ["contact_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_table("feedback")
