"""message search: a GIN full-text index on PostgreSQL, an FTS5 table kept by triggers on SQLite

Revision ID: 0012h_message_search
Revises: 0011h_internal_notes

The PostgreSQL index expression must stay exactly `threads.search.PG_DOCUMENT`. On SQLite
`messages_fts` is an external-content FTS5 table over `messages.body`; a later migration that
rebuilds `messages` in batch mode drops these triggers and must create them again.
"""

from __future__ import annotations

from alembic import op

revision = "0012h_message_search"
down_revision = "0011h_internal_notes"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
        INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
    END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_messages_body_fts ON messages USING gin (to_tsvector('simple'::regconfig, body))")
        return
    op.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5("
        "body, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    for trigger in SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_messages_body_fts")
        return
    for name in ("messages_fts_insert", "messages_fts_delete", "messages_fts_update"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE messages_fts")
