"""email choice: each contact's notification choice (each message, daily summary, paused)

Revision ID: 0011g_email_choice
Revises: 0011g_parent_links
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import threads.types

revision = "0011g_email_choice"
down_revision = "0011g_parent_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_choice", sa.String(length=16), server_default="each", nullable=False))
        batch_op.add_column(sa.Column("summary_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("summary_sent_on", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("email_choice_at", threads.types.UTCDateTime(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_contacts_email_choice"), "email_choice IN ('each', 'daily', 'paused')")


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_contacts_email_choice"), type_="check")
        batch_op.drop_column("email_choice_at")
        batch_op.drop_column("summary_sent_on")
        batch_op.drop_column("summary_minute")
        batch_op.drop_column("email_choice")
