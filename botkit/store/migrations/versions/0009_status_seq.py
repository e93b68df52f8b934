"""``conversations.status_seq``: the conversation's ``last_seq`` when it entered its status.

Which agent has a conversation is the name on its newest agent's message of the current
hand-off. "Of the current hand-off" compared the message's ``created_at`` (the clock of
the process that stored it) with ``status_changed_at`` (the clock of the process that
took the conversation over): with replicas' clocks a few seconds apart, an agent's first
message counted as written before the takeover (another agent's exclusive send went in),
or one from the previous hand-off still counted. Sequence numbers have no clock: the
status change and every message take the conversation row's lock, so a message of this
hand-off is exactly one with a ``seq`` above ``status_seq``.

Existing rows: those waiting for or with a human (the agents' queue, a few rows found by
``ix_conversations_handoff_queue``) get the newest ``seq`` stored before they entered
their status (by the clock, the best there is for them), and a ``status_changed_at``
still missing (a row from before 0003) is filled with the ``updated_at`` it was read as
(every agent's message moved that time, and with it the hand-off's start). Other rows
keep 0: their next status change sets it. A previous version's process serving during
the upgrade changes a status without moving ``status_seq``: until it is upgraded, a
hand-off it started reads agents' messages from the previous hand-off on. A downgrade
drops the column (the filled ``status_changed_at`` stays: it reads as before).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models (see 0001).
HANDOFF_WHERE = "status IN ('waiting_human', 'with_human')"


def upgrade() -> None:
    # NOT NULL with a constant default: a catalog change on PostgreSQL 11+ (no rewrite),
    # a plain ADD COLUMN on SQLite; a previous version's INSERT gets 0 (a new
    # conversation: every message is of its status).
    op.add_column(
        "conversations",
        sa.Column("status_seq", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.execute(
        "UPDATE conversations SET status_changed_at = updated_at "
        f"WHERE status_changed_at IS NULL AND {HANDOFF_WHERE}"
    )
    op.execute(
        "UPDATE conversations SET status_seq = COALESCE(("
        "SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = conversations.id "
        "AND m.created_at < conversations.status_changed_at), 0) "
        f"WHERE {HANDOFF_WHERE}"
    )


def downgrade() -> None:
    op.drop_column("conversations", "status_seq")
