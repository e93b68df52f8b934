"""Initial schema: contacts, conversations, messages, inbound idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botkit.store.models: a migration is a frozen
# record of one schema version and must not change when the models do.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KEY = sa.String(512)
CHANNEL = sa.String(64)
LANGUAGE = sa.String(35)
UNANSWERED = "direction = 'in' AND status = 'received'"


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("external_id", KEY, nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("language", LANGUAGE, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_contacts_channel_external_id")),
    )
    op.create_table(
        "conversations",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("conversation_key", KEY, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("language", LANGUAGE, nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('bot', 'waiting_human', 'with_human', 'closed')",
            name=op.f("ck_conversations_status"),
        ),
        sa.CheckConstraint("last_seq >= 0", name=op.f("ck_conversations_last_seq")),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_conversations_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "channel",
            "conversation_key",
            name=op.f("uq_conversations_channel_conversation_key"),
        ),
    )
    op.create_index(
        op.f("ix_conversations_contact_id"), "conversations", ["contact_id"], unique=False
    )
    op.create_table(
        "messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("working_text", sa.Text(), nullable=True),
        sa.Column("language", LANGUAGE, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", KEY, nullable=True),
        sa.Column("in_reply_to_seq", sa.Integer(), nullable=True),
        sa.Column("extra", JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_messages_direction")),
        sa.CheckConstraint(
            "status IN ('received', 'answered', 'sent', 'failed', 'rejected')",
            name=op.f("ck_messages_status"),
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_messages_seq")),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_messages_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_messages_conversation_id_seq")),
    )
    op.create_index(op.f("ix_messages_contact_id"), "messages", ["contact_id"], unique=False)
    op.create_index(
        "ix_messages_unanswered",
        "messages",
        ["created_at"],
        unique=False,
        sqlite_where=sa.text(UNANSWERED),
        postgresql_where=sa.text(UNANSWERED),
    )
    op.create_table(
        "inbound_keys",
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("idempotency_key", KEY, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_inbound_keys_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel", "idempotency_key", name=op.f("pk_inbound_keys")),
    )
    op.create_index(
        op.f("ix_inbound_keys_message_id"), "inbound_keys", ["message_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_keys_message_id"), table_name="inbound_keys")
    op.drop_table("inbound_keys")
    op.drop_index("ix_messages_unanswered", table_name="messages")
    op.drop_index(op.f("ix_messages_contact_id"), table_name="messages")
    op.drop_table("messages")
    op.drop_index(op.f("ix_conversations_contact_id"), table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("contacts")
