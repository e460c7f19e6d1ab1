"""Join the branches of issue 11's inbound work (and those beside it) into one history.

Revision ID: 0005_merge
Revises: 0004b_inbound_trust, 0004c_bounded_work
Create Date: 2026-12-02 03:45:00
"""

from __future__ import annotations

revision = "0005_merge"
down_revision = ("0004b_inbound_trust", "0004c_bounded_work")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch different tables and columns."""


def downgrade() -> None:
    """Nothing to undo."""
