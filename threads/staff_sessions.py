"""Ending a staff member's sessions: apart from the rest of the accounts, because every door
that deactivates someone or changes their password needs it, the directory import included
(which `threads.accounts` itself builds on)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from threads.models import StaffSession


def end_all_sessions(session: Session, staff_id: int, now: datetime) -> int:
    """End every open session of one staff member; how many were open."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
