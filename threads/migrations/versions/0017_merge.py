"""Join the directory's change times (0016c), the sealed webhook secrets and business authors (0016d) and the page indexes (0016e) into one history.

Revision ID: 0017_merge
Revises: 0016c_directory_updated_at, 0016d_business_author, 0016e_page_indexes
"""

from __future__ import annotations

revision = "0017_merge"
down_revision = ("0016c_directory_updated_at", "0016d_business_author", "0016e_page_indexes")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: the branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
