"""Read and notified cursors: per (thread, person), they only ever move forward."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from threads.models import NotifiedCursor, Person, ReadCursor
from threads.types import utcnow

CursorModel = type[ReadCursor] | type[NotifiedCursor]


def advance_cursor(session: Session, model: CursorModel, thread_id: int, person: Person, message_id: int) -> None:
    """Move the cursor to `message_id` unless it is already there or further.

    One upsert statement, so two processes moving the same cursor at once cannot
    conflict or move it backwards.
    """
    statement = _advance_statement(session.get_bind().dialect.name, model)
    # On the session's connection: the ORM's bulk-insert path around a plain upsert cost
    # more CPU than the statement (every post and page view runs it). Nothing pending in
    # the session is read by it.
    session.connection().execute(
        statement,
        {
            "thread_id": thread_id,
            "person_kind": person.kind,
            "person_id": person.id,
            "message_id": message_id,
            "updated_at": utcnow(),
        },
    )


@cache
def _advance_statement(dialect: str, model: CursorModel) -> Insert:
    """The upsert, built once per dialect and cursor kind: every page view runs it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(
        {name: bindparam(name) for name in ("thread_id", "person_kind", "person_id", "message_id", "updated_at")}
    )
    return forward_only(statement, model)


def forward_only(statement: postgresql.Insert | sqlite.Insert, model: CursorModel) -> Insert:
    """`statement`, an INSERT of cursor rows, as the upsert that never moves a cursor back."""
    return statement.on_conflict_do_update(
        index_elements=[model.thread_id, model.person_kind, model.person_id],
        set_={"message_id": statement.excluded.message_id, "updated_at": statement.excluded.updated_at},
        where=model.message_id < statement.excluded.message_id,
    )


def cursor_position(session: Session, model: CursorModel, thread_id: int, person: Person) -> int:
    """The message id the cursor points at; 0 when the person has none yet."""
    value = session.scalar(
        select(model.message_id).where(
            model.thread_id == thread_id,
            model.person_kind == person.kind,
            model.person_id == person.id,
        )
    )
    return value or 0
