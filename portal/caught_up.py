"""The tab dot for senior staff, without rescanning every thread on each poll.

Every open portal tab asks `/api/unread` every few seconds. For someone who has read
everything, answering "no unread" means comparing every thread with their cursor (a few
ms of database time at 10,000 families). But cursors only move forward, so once a person
had nothing unread, only a new message can change that. Each app (one per worker
process) remembers, per senior, the newest message id that existed when they were seen
caught up; while no message is newer (one primary-key probe), the answer stands.

A message whose id was drawn before that probe but committed after it would not move the
newest id, so a remembered answer is trusted for `TRUST_SECONDS` at most.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threads.models import Message, Staff
from threads.reading import has_unread

TRUST_SECONDS = 30.0
MAX_REMEMBERED = 10_000


class CaughtUp:
    """Seniors seen with nothing unread: staff id -> (newest message id then, when)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def tab_unread(self, session: Session, staff: Staff, now: datetime) -> bool:
        """`threads.reading.has_unread`, remembered while it is False and nothing was posted."""
        if not staff.is_senior:
            return has_unread(session, staff, now)  # today's families change with the day
        newest = session.scalar(select(func.max(Message.id))) or 0
        with self._lock:
            seen = self._seen.get(staff.id)
        if seen is not None and seen[0] == newest and time.monotonic() - seen[1] < TRUST_SECONDS:
            return False
        unread = has_unread(session, staff, now)
        with self._lock:
            if unread:
                self._seen.pop(staff.id, None)
            else:
                if len(self._seen) >= MAX_REMEMBERED:
                    self._seen.clear()
                self._seen[staff.id] = (newest, time.monotonic())
        return unread
