"""Rate limits kept in the database (`rate_limit_hits`), so they hold across processes.

A bucket names what is counted ("password-reset:address:<email>"); `allow` counts the hits
in a sliding window and records this one when it is allowed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from threads.models import RateLimitHit

# Hits older than this are deleted as new ones arrive: no limit here has a longer window.
RETENTION = timedelta(days=1)


def allow(session: Session, buckets: dict[str, int], window: timedelta, now: datetime) -> bool:
    """True, and one hit recorded in each bucket, when every bucket is under its limit."""
    since = now - window
    used = dict(
        session.execute(
            select(RateLimitHit.bucket, func.count())
            .where(RateLimitHit.bucket.in_([bucket[:400] for bucket in buckets]), RateLimitHit.at > since)
            .group_by(RateLimitHit.bucket)
        ).all()
    )
    if any(used.get(bucket[:400], 0) >= limit for bucket, limit in buckets.items()):
        return False
    session.execute(delete(RateLimitHit).where(RateLimitHit.at < now - RETENTION))  # index on `at` (0016e)
    session.add_all(RateLimitHit(bucket=bucket[:400], at=now) for bucket in buckets)
    session.flush()
    return True
