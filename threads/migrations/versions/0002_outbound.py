"""outbound: messages.alerted_at

Revision ID: 0002_outbound
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import threads.types

revision = "0002_outbound"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alerted_at", threads.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("alerted_at")
