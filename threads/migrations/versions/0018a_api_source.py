"""messages.source accepts `api`: a message a business's own software posted through the API.

Revision ID: 0018a_api_source
Revises: 0017_merge

Until now such a message was recorded as written in the portal, and the thread's badge said
so. On SQLite the CHECK constraint changes by rebuilding `messages` in batch mode, which
drops the triggers that keep `messages_fts` in step: they are made again as 0016f made them
(body and thread_id), and the search index rebuilt.
"""

from __future__ import annotations

from alembic import op

revision = "0018a_api_source"
down_revision = "0017_merge"
branch_labels = None
depends_on = None

OLD_SOURCES = "source IN ('portal', 'email', 'system', 'web')"
NEW_SOURCES = "source IN ('portal', 'email', 'system', 'web', 'api')"
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


def _check(allowed: str) -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_source"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_source"), allowed)
    if op.get_bind().dialect.name == "sqlite":
        for name, create in _TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(create)
        op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def upgrade() -> None:
    _check(NEW_SOURCES)


def downgrade() -> None:
    # The older schema has no source for them: they came in as the portal's did.
    op.execute("UPDATE messages SET source = 'portal' WHERE source = 'api'")
    _check(OLD_SOURCES)
