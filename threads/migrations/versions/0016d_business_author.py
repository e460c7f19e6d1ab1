"""Messages may be posted as the business itself (`author_type = 'business'`).

Revision ID: 0016d_business_author
Revises: 0016d_webhook_secret_encrypted

On SQLite the CHECK constraint changes by rebuilding `messages` in batch mode, which drops
the triggers that keep `messages_fts` in step (0012h_message_search): they are made again
here, as 0015_merge does, and the search index rebuilt.
"""

from __future__ import annotations

from alembic import op

revision = "0016d_business_author"
down_revision = "0016d_webhook_secret_encrypted"
branch_labels = None
depends_on = None

OLD_TYPES = "author_type IN ('staff', 'contact', 'system')"
NEW_TYPES = "author_type IN ('staff', 'contact', 'system', 'business')"
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


def _check(allowed: str) -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_author_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_author_type"), allowed)
    if op.get_bind().dialect.name == "sqlite":
        for name, create in _TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(create)
        op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def upgrade() -> None:
    _check(NEW_TYPES)


def downgrade() -> None:
    # The business's posts become system notes: the older schema has no author for them.
    op.execute("UPDATE messages SET author_type = 'system', source = 'system' WHERE author_type = 'business'")
    _check(OLD_TYPES)
