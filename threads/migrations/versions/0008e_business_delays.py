"""business delays: a business's own digest and escalation delays (None: the deployment's)

Revision ID: 0008e_business_delays
Revises: 0007e_two_factor
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008e_business_delays"
down_revision = "0007e_two_factor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_delay_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("escalate_after_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("escalate_after_minutes")
        batch_op.drop_column("notify_delay_seconds")
