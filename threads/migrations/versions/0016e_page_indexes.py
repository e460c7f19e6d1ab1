"""indexes for the admin pages and the parent page at a big business's size

Revision ID: 0016e_page_indexes
Revises: 0015_merge

- families (business_id, name, id): the Families page's first 50 by name, and each next
  page by keyset, read in index order instead of sorting all of a business's families;
- appointments (business_id, ends_at): the Schedule's week reads what ends after the week's
  first day (this week and later), not every past appointment;
- rate_limit_hits (at): every counted hit deletes the day-old ones; without it, that delete
  read the whole table (two rows per parent page view);
- audit_entries (family_id, id), (actor_id, id), (staff_id, id): the Audit page's filters,
  newest first, read in index order (they replace the one-column indexes).
"""

from __future__ import annotations

from alembic import op

revision = "0016e_page_indexes"
down_revision = "0015_merge"
branch_labels = None
depends_on = None

_AUDIT = ("family_id", "actor_id", "staff_id")


def upgrade() -> None:
    op.create_index("ix_families_business_id_name_id", "families", ["business_id", "name", "id"], unique=False)
    op.create_index("ix_appointments_business_id_ends_at", "appointments", ["business_id", "ends_at"], unique=False)
    op.create_index("ix_rate_limit_hits_at", "rate_limit_hits", ["at"], unique=False)
    for column in _AUDIT:
        op.drop_index(f"ix_audit_entries_{column}", table_name="audit_entries")
        op.create_index(f"ix_audit_entries_{column}_id", "audit_entries", [column, "id"], unique=False)


def downgrade() -> None:
    for column in _AUDIT:
        op.drop_index(f"ix_audit_entries_{column}_id", table_name="audit_entries")
        op.create_index(f"ix_audit_entries_{column}", "audit_entries", [column], unique=False)
    op.drop_index("ix_rate_limit_hits_at", table_name="rate_limit_hits")
    op.drop_index("ix_appointments_business_id_ends_at", table_name="appointments")
    op.drop_index("ix_families_business_id_name_id", table_name="families")
