"""inbound trust: one auto-reply note per sender and day; reply-address rotation time

- auto_reply_notes: its primary key (thread, sender, business day) makes concurrent
  auto-replies from one sender post exactly one note.
- threads.rotated_at: Message-IDs from before a rotation no longer route tokenless mail.

Revision ID: 0004b_inbound_trust
Revises: 0003_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import threads.types

revision = "0004b_inbound_trust"
down_revision = "0003_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_reply_notes",
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", threads.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_auto_reply_notes_message_id_messages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["threads.id"], name=op.f("fk_auto_reply_notes_thread_id_threads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("thread_id", "sender", "day", name=op.f("pk_auto_reply_notes")),
    )
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rotated_at", threads.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_column("rotated_at")
    op.drop_table("auto_reply_notes")
