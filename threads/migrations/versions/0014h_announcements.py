"""announcements: one message to many families, with a delivery row per family

Revision ID: 0014h_announcements
Revises: 0013h_saved_replies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from threads.types import UTCDateTime

revision = "0014h_announcements"
down_revision = "0013h_saved_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("audience", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name=op.f("fk_announcements_business_id_businesses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_announcements_staff_id_staff"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_index("ix_announcements_business_id_id", "announcements", ["business_id", "id"], unique=False)
    op.create_table(
        "announcement_deliveries",
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"], name=op.f("fk_announcement_deliveries_announcement_id_announcements"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["family_id"], ["families.id"], name=op.f("fk_announcement_deliveries_family_id_families"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_announcement_deliveries_message_id_messages"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("announcement_id", "family_id", name=op.f("pk_announcement_deliveries")),
    )


def downgrade() -> None:
    op.drop_table("announcement_deliveries")
    op.drop_index("ix_announcements_business_id_id", table_name="announcements")
    op.drop_table("announcements")
