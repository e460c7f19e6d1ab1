"""audit entries: who changed what in the directory, accounts or settings, and when

Revision ID: 0009e_audit_entries
Revises: 0008e_business_delays
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from threads.types import UTCDateTime

revision = "0009e_audit_entries"
down_revision = "0008e_business_delays"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name=op.f("fk_audit_entries_business_id_businesses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["staff.id"], name=op.f("fk_audit_entries_actor_id_staff"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["family_id"], ["families.id"], name=op.f("fk_audit_entries_family_id_families"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_audit_entries_staff_id_staff"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_business_id_id", "audit_entries", ["business_id", "id"], unique=False)
    op.create_index("ix_audit_entries_family_id", "audit_entries", ["family_id"], unique=False)
    op.create_index("ix_audit_entries_actor_id", "audit_entries", ["actor_id"], unique=False)
    op.create_index("ix_audit_entries_staff_id", "audit_entries", ["staff_id"], unique=False)


def downgrade() -> None:
    for name in ("ix_audit_entries_staff_id", "ix_audit_entries_actor_id", "ix_audit_entries_family_id", "ix_audit_entries_business_id_id"):
        op.drop_index(name, table_name="audit_entries")
    op.drop_table("audit_entries")
