"""Join the API (0011f), the parents' side (0011g) and the staff tools (0011h-0014h) into one history.

Revision ID: 0015_merge
Revises: 0011f_api_keys, 0011g_email_choice, 0014h_announcements

On SQLite, `0011g_parent_links` rebuilds `messages` in batch mode, which drops the triggers
that keep `messages_fts` in step (`0012h_message_search`); the branches may run in either
order, so the triggers are made again here and the search index rebuilt from the messages.
"""

from __future__ import annotations

from alembic import op

revision = "0015_merge"
down_revision = ("0011f_api_keys", "0011g_email_choice", "0014h_announcements")
branch_labels = None
depends_on = None

# As 0012h_message_search made them (a migration is a snapshot: it imports no other).
_TRIGGERS = {
    "messages_fts_insert": """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
    END""",
    "messages_fts_delete": """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END""",
    "messages_fts_update": """CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
        INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
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
    """Nothing to undo: the triggers belong to 0012h_message_search."""
