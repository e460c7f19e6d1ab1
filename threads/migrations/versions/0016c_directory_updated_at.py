"""directory updated_at: when each staff member, family and appointment last changed; removed contacts

Revision ID: 0016c_directory_updated_at
Revises: 0015_merge

- `updated_at` on staff, families and appointments (the API's `updated_since`), indexed
  with the business and the id (the order of an `updated_since` page). Existing staff and
  families take their `created_at`; existing appointments, which never kept one, the
  migration's instant (an integrator syncing from before it sees them once more).
- `contacts.removed_at`: a contact the directory removed keeps their row (their messages
  keep their name) but leaves the family.

Columns are added with ALTER TABLE ... ADD COLUMN (NOT NULL with a constant default, then
backfilled), never a batch rebuild: on SQLite with foreign keys on, rebuilding `families`
would cascade into every table that refers to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import threads.types

revision = "0016c_directory_updated_at"
down_revision = "0015_merge"
branch_labels = None
depends_on = None

TABLES = ("staff", "families", "appointments")


def upgrade() -> None:
    instant = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    for table in TABLES:
        op.add_column(table, sa.Column("updated_at", threads.types.UTCDateTime(), nullable=False, server_default=instant))
        if table != "appointments":
            op.execute(sa.text(f"UPDATE {table} SET updated_at = created_at WHERE created_at IS NOT NULL"))
        if op.get_bind().dialect.name != "sqlite":  # SQLite cannot drop a default without a rebuild
            op.alter_column(table, "updated_at", server_default=None)
        op.create_index(f"ix_{table}_business_id_updated_at", table, ["business_id", "updated_at", "id"], unique=False)
    op.add_column("contacts", sa.Column("removed_at", threads.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35 has it): no rebuild cascading into other tables.
    op.execute(sa.text("ALTER TABLE contacts DROP COLUMN removed_at"))
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_business_id_updated_at", table_name=table)
        op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN updated_at"))
