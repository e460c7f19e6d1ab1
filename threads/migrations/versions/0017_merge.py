"""Join the directory's change times (0016c), the sealed webhook secrets and business authors
(0016d), the page indexes (0016e) and the search document (0016f) into one history.

Revision ID: 0017_merge
Revises: 0016c_directory_updated_at, 0016d_business_author, 0016e_page_indexes, 0016f_search_document

On SQLite, `0016d_business_author` rebuilds `messages` in batch mode and makes 0012h's
triggers again (body only), while `0016f_search_document` indexes the thread too; the
branches may run in either order, so 0016f's triggers are made again here and the search
index rebuilt from the messages.
"""

from __future__ import annotations

from alembic import op

revision = "0017_merge"
down_revision = ("0016c_directory_updated_at", "0016d_business_author", "0016e_page_indexes", "0016f_search_document")
branch_labels = None
depends_on = None

# As 0016f_search_document made them (a migration is a snapshot: it imports no other).
_TRIGGERS = {
    "messages_fts_insert": """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, body, thread_id) VALUES (new.id, new.body, new.thread_id);
    END""",
    "messages_fts_delete": """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body, thread_id) VALUES ('delete', old.id, old.body, old.thread_id);
    END""",
    "messages_fts_update": """CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, thread_id ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body, thread_id) VALUES ('delete', old.id, old.body, old.thread_id);
        INSERT INTO messages_fts(rowid, body, thread_id) VALUES (new.id, new.body, new.thread_id);
    END""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, create in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(create)
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def downgrade() -> None:
    """Nothing to undo: the triggers belong to 0016f_search_document."""
