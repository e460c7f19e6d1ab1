"""Rate limits kept in the database (`rate_limit_hits`), so they hold across processes.

A bucket names what is counted ("password-reset:address:<email>"); `allow` counts the hits
in a sliding window and records this one when it is allowed.

Every parent page view and every API call passes here, so the check is one statement: an
`INSERT ... SELECT` that records a hit in each bucket only when every bucket's count in the
window is under its limit (the counts are uncorrelated subqueries, evaluated once, before
anything is inserted); the rows it inserted say whether it allowed.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Insert, bindparam, delete, func, insert, select, union_all
from sqlalchemy.orm import Session

from threads.models import RateLimitHit

# Hits older than this are deleted: no limit here has a longer window.
RETENTION = timedelta(days=1)
# How often one process deletes them (not on every hit: that was a statement per request).
PRUNE_EVERY = timedelta(minutes=1)

_pruned = threading.local()  # per thread: no lock, and at worst one delete per thread a minute


def allow(session: Session, buckets: dict[str, int], window: timedelta, now: datetime) -> bool:
    """True, and one hit recorded in each bucket, when every bucket is under its limit."""
    if not buckets:
        return True
    names = [bucket[:400] for bucket in buckets]
    params: dict[str, object] = {"at": now, "since": now - window}
    for n, (name, limit) in enumerate(zip(names, buckets.values(), strict=True)):
        params[f"bucket_{n}"], params[f"limit_{n}"] = name, limit
    inserted = session.connection().execute(_record_if_under(len(names)), params).rowcount
    _prune(session, now)
    return inserted == len(names)


@cache
def _record_if_under(count: int) -> Insert:
    """INSERT one hit per bucket, SELECTed only when each bucket's count is under its limit."""
    since = bindparam("since", type_=RateLimitHit.at.type)
    wanted = union_all(
        *(select(bindparam(f"bucket_{n}", type_=RateLimitHit.bucket.type).label("bucket")) for n in range(count))
    ).subquery("wanted")
    under = [
        select(func.count())
        .select_from(RateLimitHit)
        .where(RateLimitHit.bucket == bindparam(f"bucket_{n}", type_=RateLimitHit.bucket.type), RateLimitHit.at > since)
        .scalar_subquery()
        < bindparam(f"limit_{n}")
        for n in range(count)
    ]
    rows = select(wanted.c.bucket, bindparam("at", type_=RateLimitHit.at.type)).where(*under)
    # An INSERT's row count is only kept when asked for.
    return insert(RateLimitHit).from_select(["bucket", "at"], rows).execution_options(preserve_rowcount=True)


def _prune(session: Session, now: datetime) -> None:
    """Delete the day-old hits, at most once a minute per thread (index on `at`, 0016e)."""
    last: datetime | None = getattr(_pruned, "at", None)
    if last is not None and last <= now < last + PRUNE_EVERY:
        return
    session.connection().execute(delete(RateLimitHit).where(RateLimitHit.at < now - RETENTION))
    _pruned.at = now
