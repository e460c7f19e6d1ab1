"""query indexes: a person's read cursors, index-only, in thread order

Replaces ix_read_cursors_person (person_kind, person_id), which is a prefix of the new
index and so serves every query it served.

Revision ID: 0002_query_indexes
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002_query_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("read_cursors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_read_cursors_person_thread", ["person_kind", "person_id", "thread_id", "message_id"], unique=False
        )
        batch_op.drop_index("ix_read_cursors_person")


def downgrade() -> None:
    with op.batch_alter_table("read_cursors", schema=None) as batch_op:
        batch_op.create_index("ix_read_cursors_person", ["person_kind", "person_id"], unique=False)
        batch_op.drop_index("ix_read_cursors_person_thread")
