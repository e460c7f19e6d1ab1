"""bounded work per email: the worker's lease on a stored email, and truncated messages

- `inbound_emails.claimed_until`: a worker that starts on a `received` email holds it
  until then; the repair step never re-queues an email whose lease is still running.
- two indexes for the rate limit: a thread's and a sender's emails of the last minute.
- `messages.truncated`: the visible text was cut at `threads.limits.MAX_VISIBLE_TEXT`; the
  portal links the stored raw email ("show the full email").

Revision ID: 0004c_bounded_work
Revises: 0003_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import threads.types

revision = "0004c_bounded_work"
down_revision = "0003_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", threads.types.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_inbound_emails_thread_id_received_at", ["thread_id", "received_at"], unique=False)
        batch_op.create_index("ix_inbound_emails_sender_received_at", ["sender", "received_at"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("truncated", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("truncated")
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_emails_sender_received_at")
        batch_op.drop_index("ix_inbound_emails_thread_id_received_at")
        batch_op.drop_column("claimed_until")
