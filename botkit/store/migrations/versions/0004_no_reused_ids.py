"""Deleted rows' ids are never handed out again, and deleting a contact never deletes a
conversation by cascade.

Retention and erasure (``botkit data``) delete rows. SQLite gives a new row the largest
rowid + 1, so after the newest conversation or message is deleted, the next one gets its
id: a reply still being written to the deleted one would land in the new one, and an
"answered" mark meant for the deleted message would close the new customer's. The
tables are rebuilt with ``AUTOINCREMENT`` (SQLite then never reuses an id); PostgreSQL's
identity sequences never did.

``conversations.contact_id`` loses ``ON DELETE CASCADE``: a purge deleting a contact it
saw without conversations could otherwise delete, by cascade, the conversation a
returning customer is opening at that moment; now that delete fails instead (and the
next purge looks again). botkit deletes a contact's conversations explicitly.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
UNANSWERED = "direction = 'in' AND status = 'received'"
FK = "fk_conversations_contact_id_contacts"


def _contact_fk(cascade: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "conversations",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.create_foreign_key(
            FK, "contacts", ["contact_id"], ["id"], ondelete="CASCADE" if cascade else None
        )


def upgrade() -> None:
    _contact_fk(cascade=False)
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "contacts", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    # The partial index is dropped and made again around the rebuild: a rebuild copies
    # indexes as reflected, and its WHERE clause is not reliably reflected.
    op.drop_index("ix_messages_unanswered", table_name="messages")
    with op.batch_alter_table(
        "messages", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    op.create_index(
        "ix_messages_unanswered",
        "messages",
        ["created_at"],
        unique=False,
        sqlite_where=sa.text(UNANSWERED),
    )


def downgrade() -> None:
    # The tables keep AUTOINCREMENT (earlier revisions work the same with it).
    _contact_fk(cascade=True)
