"""api keys: a business's hashed keys for the REST API, with scopes and last use

Revision ID: 0011f_api_keys
Revises: 0010_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from threads.types import UTCDateTime

revision = "0011f_api_keys"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name=op.f("fk_api_keys_business_id_businesses"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_business_id", "api_keys", ["business_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_keys_business_id", table_name="api_keys")
    op.drop_table("api_keys")
