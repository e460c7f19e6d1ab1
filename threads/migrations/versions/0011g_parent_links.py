"""parent links: a per-contact key for the signed links to the family's conversation; `web` source

- parent_links: one row per contact (removed with the contact), whose secret every parent
  link names; a new secret revokes the old links.
- messages.source accepts `web` (a reply written on the parent page).

Revision ID: 0011g_parent_links
Revises: 0010_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import threads.types

revision = "0011g_parent_links"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parent_links",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", threads.types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", threads.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_parent_links_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_parent_links")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_source"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_source"), "source IN ('portal', 'email', 'system', 'web')")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_source"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_source"), "source IN ('portal', 'email', 'system')")
    op.drop_table("parent_links")
