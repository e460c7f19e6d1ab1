"""One system note per auto-replying sender, thread and business day, even under concurrency.

Checking "was one noted today?" and then posting races: two workers both see none. The
note is instead claimed by inserting its key row (thread, sender, day); the database's
primary key lets exactly one insert through, on PostgreSQL (the second waits for the
first to commit, then finds the conflict) and on SQLite (one writer at a time).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from threads.models import AutoReplyNote, Thread
from threads.schedule import business_today
from threads.types import utcnow


def claim_daily_note(session: Session, thread: Thread, sender: str, now: datetime | None = None) -> bool:
    """True for the one caller per (thread, sender, business day) that should post the note."""
    now = now or utcnow()
    values = {
        "thread_id": thread.id,
        "sender": sender.strip().lower()[:320],
        "day": business_today(thread.business, now).isoformat(),
        "created_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    claimed = session.execute(
        insert(AutoReplyNote).values(**values).on_conflict_do_nothing().returning(AutoReplyNote.thread_id)
    ).first()
    return claimed is not None


def record_note(session: Session, thread: Thread, sender: str, message_id: int, now: datetime | None = None) -> None:
    """Link the claimed key row to the note that was posted (for the record)."""
    now = now or utcnow()
    session.execute(
        update(AutoReplyNote)
        .where(
            AutoReplyNote.thread_id == thread.id,
            AutoReplyNote.sender == sender.strip().lower()[:320],
            AutoReplyNote.day == business_today(thread.business, now).isoformat(),
        )
        .values(message_id=message_id)
    )
