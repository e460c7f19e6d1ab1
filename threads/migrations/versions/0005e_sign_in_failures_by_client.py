"""sign-in failures by client: the per-client limit counts one address across accounts

Revision ID: 0005e_sign_in_failures_by_client
Revises: 0004e_staff_sessions
"""

from __future__ import annotations

from alembic import op

revision = "0005e_sign_in_failures_by_client"
down_revision = "0004e_staff_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sign_in_failures_remote_addr_at", "sign_in_failures", ["remote_addr", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sign_in_failures_remote_addr_at", table_name="sign_in_failures")
