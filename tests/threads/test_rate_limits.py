"""`threads.rate_limits.allow` on both databases: every bucket under its limit or nothing is
recorded, a sliding window, and day-old hits deleted (at most once a minute per thread)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threads import rate_limits
from threads.models import RateLimitHit
from threads.rate_limits import allow

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _hits(db: Session, bucket: str) -> int:
    return db.scalar(select(func.count()).select_from(RateLimitHit).where(RateLimitHit.bucket == bucket)) or 0


def test_a_bucket_allows_its_limit_within_the_window_then_again_after_it(db: Session) -> None:
    assert [allow(db, {"b": 3}, MINUTE, NOW + timedelta(seconds=s)) for s in range(5)] == [True, True, True, False, False]
    assert _hits(db, "b") == 3  # a refused attempt is not recorded
    assert allow(db, {"b": 3}, MINUTE, NOW + timedelta(seconds=60.5))  # the first hit left the window
    assert not allow(db, {"b": 3}, MINUTE, NOW + timedelta(seconds=60.5))


def test_one_full_bucket_refuses_and_records_in_none(db: Session) -> None:
    assert allow(db, {"client": 5, "contact": 1}, MINUTE, NOW)
    assert not allow(db, {"client": 5, "contact": 1}, MINUTE, NOW)
    assert (_hits(db, "client"), _hits(db, "contact")) == (1, 1)
    assert allow(db, {"client": 5, "other": 1}, MINUTE, NOW)
    assert (_hits(db, "client"), _hits(db, "other")) == (2, 1)


def test_buckets_are_counted_apart_and_cut_at_400_characters(db: Session) -> None:
    long = "x" * 500
    assert allow(db, {long: 1}, MINUTE, NOW)
    assert not allow(db, {long + "y": 1}, MINUTE, NOW)  # the same first 400 characters
    assert allow(db, {"a": 1}, MINUTE, NOW) and allow(db, {"b": 1}, MINUTE, NOW)


def test_day_old_hits_are_deleted_once_a_minute(db: Session, monkeypatch) -> None:
    monkeypatch.setattr(rate_limits, "_pruned", type(rate_limits._pruned)())
    db.add(RateLimitHit(bucket="old", at=NOW - timedelta(days=2)))
    db.flush()
    assert allow(db, {"new": 100}, MINUTE, NOW)
    assert _hits(db, "old") == 0
    db.add(RateLimitHit(bucket="old", at=NOW - timedelta(days=2)))
    db.flush()
    assert allow(db, {"new": 100}, MINUTE, NOW + timedelta(seconds=30))
    assert _hits(db, "old") == 1  # pruned less than a minute ago: no delete on every hit
    assert allow(db, {"new": 100}, MINUTE, NOW + timedelta(seconds=61))
    assert _hits(db, "old") == 0


def test_no_bucket_allows(db: Session) -> None:
    assert allow(db, {}, MINUTE, NOW)
