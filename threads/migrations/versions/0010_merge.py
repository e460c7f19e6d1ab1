"""Join issue 11's inbound work (0005_merge) and issue 12's portal administration (0004e-0009e).

Revision ID: 0010_merge
Revises: 0005_merge, 0009e_audit_entries
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

revision = "0010_merge"
down_revision = ("0005_merge", "0009e_audit_entries")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch different tables and columns."""


def downgrade() -> None:
    """Nothing to undo."""
