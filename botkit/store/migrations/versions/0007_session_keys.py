"""``session_keys``: the key that signs web visitors' session tokens when no site_secret is set.

A new table, so nothing existing is rewritten. The first process that needs a key makes
it (32 random bytes) and every other process and later run reads the same one, so a
restart or another replica keeps web visitors signed in. Dropping the table (a
downgrade) drops the key: every token signed with it is refused from then on, and
anonymous web visitors start new conversations.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "session_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_session_keys"),
    )


def downgrade() -> None:
    op.drop_table("session_keys")
