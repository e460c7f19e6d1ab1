"""staff tokens and rate-limit hits: invitations and password resets by email

- `staff_tokens`: single-use invitation and reset links (hashed).
- `rate_limit_hits`: attempts counted per bucket (reset requests per address, per client).
- `outbound_emails.kind` also allows `invite` and `password_reset`: those emails go through
  the outbox like every other.

Revision ID: 0006e_staff_tokens
Revises: 0005e_sign_in_failures_by_client
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from threads.types import UTCDateTime

revision = "0006e_staff_tokens"
down_revision = "0005e_sign_in_failures_by_client"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('digest', 'alert', 'escalation')"
NEW_KINDS = "kind IN ('digest', 'alert', 'escalation', 'invite', 'password_reset')"


def upgrade() -> None:
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("purpose IN ('invite', 'password_reset')", name=op.f("ck_staff_tokens_purpose")),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name=op.f("fk_staff_tokens_business_id_businesses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_staff_tokens_staff_id_staff"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_tokens_token_hash")),
    )
    op.create_index("ix_staff_tokens_staff_id_purpose", "staff_tokens", ["staff_id", "purpose"], unique=False)
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=400), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hits")),
    )
    op.create_index("ix_rate_limit_hits_bucket_at", "rate_limit_hits", ["bucket", "at"], unique=False)
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch_op.create_check_constraint("kind", NEW_KINDS)


def downgrade() -> None:
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch_op.create_check_constraint("kind", OLD_KINDS)
    op.drop_index("ix_rate_limit_hits_bucket_at", table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
    op.drop_index("ix_staff_tokens_staff_id_purpose", table_name="staff_tokens")
    op.drop_table("staff_tokens")
