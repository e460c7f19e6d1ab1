"""internal notes: a staff-only flag on messages (rule 8)

Revision ID: 0011h_internal_notes
Revises: 0010_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011h_internal_notes"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("internal", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("internal")
