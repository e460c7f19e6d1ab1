"""Join the outbound and query-index branches into one history.

Revision ID: 0003_merge
Revises: 0002_outbound, 0002_query_indexes
Create Date: 2026-11-24 16:12:35
"""

from __future__ import annotations

revision = "0003_merge"
down_revision = ("0002_outbound", "0002_query_indexes")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the two branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
