"""saved replies: a business's canned answers with placeholders

Revision ID: 0013h_saved_replies
Revises: 0012h_message_search
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from threads.types import UTCDateTime

revision = "0013h_saved_replies"
down_revision = "0012h_message_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name=op.f("fk_saved_replies_business_id_businesses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by_staff_id"], ["staff.id"], name=op.f("fk_saved_replies_updated_by_staff_id_staff"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_replies")),
        sa.UniqueConstraint("business_id", "name", name=op.f("uq_saved_replies_business_id_name")),
    )


def downgrade() -> None:
    op.drop_table("saved_replies")
