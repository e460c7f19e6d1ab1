"""message search at a million messages: a stored tsvector on PostgreSQL; prefix indexes and the thread on SQLite

Revision ID: 0016f_search_document
Revises: 0015_merge

PostgreSQL: `messages.body_tsv` is `to_tsvector('simple', body)` computed once when a row is
written (a generated column), and the GIN index moves onto it. Reading newest first and
testing each row then costs a comparison instead of parsing the text again
(`threads.search` relies on the column by name).

SQLite: `messages_fts` is made again with
- `prefix='1 2 3 4'`: FTS5 answers a prefix query by merging the lists of every word that
  starts with it before yielding the first row ("t*" read a million entries); a prefix
  index of that length is read in order and stops at the page's last hit;
- the message's `thread_id` as a second indexed column: a basic staff member's search is
  "these words in these few threads", which FTS5 then intersects inside the index instead of
  reading every hit of a common word across the business.
The triggers now copy `thread_id` too. A later migration that rebuilds `messages` in batch
mode must create these triggers (not 0012h's) again.
"""

from __future__ import annotations

from alembic import op

revision = "0016f_search_document"
down_revision = "0015_merge"
branch_labels = None
depends_on = None

_TRIGGER_NAMES = ("messages_fts_insert", "messages_fts_delete", "messages_fts_update")

_TRIGGERS = (
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, body, thread_id) VALUES (new.id, new.body, new.thread_id);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body, thread_id) VALUES ('delete', old.id, old.body, old.thread_id);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, thread_id ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, body, thread_id) VALUES ('delete', old.id, old.body, old.thread_id);
        INSERT INTO messages_fts(rowid, body, thread_id) VALUES (new.id, new.body, new.thread_id);
    END""",
)

# As 0012h_message_search made them, for the downgrade.
_BODY_ONLY_TRIGGERS = (
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
_TOKENIZE = "tokenize='unicode61 remove_diacritics 2'"


def _remake_fts(columns: str, options: str, triggers: tuple[str, ...]) -> None:
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS messages_fts")
    op.execute(f"CREATE VIRTUAL TABLE messages_fts USING fts5({columns}, content='messages', content_rowid='id', {options})")
    for trigger in triggers:
        op.execute(trigger)
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE messages ADD COLUMN body_tsv tsvector"
            " GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, body)) STORED"
        )
        op.execute("CREATE INDEX ix_messages_body_tsv ON messages USING gin (body_tsv)")
        op.execute("DROP INDEX IF EXISTS ix_messages_body_fts")
        return
    _remake_fts("body, thread_id", f"{_TOKENIZE}, prefix='1 2 3 4'", _TRIGGERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_messages_body_fts ON messages USING gin (to_tsvector('simple'::regconfig, body))")
        op.execute("DROP INDEX ix_messages_body_tsv")
        op.execute("ALTER TABLE messages DROP COLUMN body_tsv")
        return
    _remake_fts("body", _TOKENIZE, _BODY_ONLY_TRIGGERS)
