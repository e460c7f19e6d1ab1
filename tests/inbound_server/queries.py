"""Short reads of what the server committed (each in its own transaction, so SQLite's
writer lock is never held by the test while the server works)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from threads.models import ContactAddress, InboundEmail, Message, ReadCursor


def messages(engine: Engine, thread_id: int) -> list[Message]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Message)
                .options(selectinload(Message.attachments))
                .where(Message.thread_id == thread_id)
                .order_by(Message.id)
            )
        )


def inbound(engine: Engine) -> list[InboundEmail]:
    with Session(engine) as session:
        rows = list(session.scalars(select(InboundEmail).order_by(InboundEmail.id)))
        for row in rows:
            _ = row.raw  # load the deferred column before the session closes
        return rows


def inbound_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(InboundEmail)) or 0


def read_cursor(engine: Engine, thread_id: int, kind: str, person_id: int) -> int | None:
    with Session(engine) as session:
        return session.scalar(
            select(ReadCursor.message_id).where(
                ReadCursor.thread_id == thread_id, ReadCursor.person_kind == kind, ReadCursor.person_id == person_id
            )
        )


def address(engine: Engine, email: str) -> ContactAddress:
    with Session(engine) as session:
        return session.scalars(select(ContactAddress).where(ContactAddress.email == email)).one()
