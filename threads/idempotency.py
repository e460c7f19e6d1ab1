"""Idempotent writes: a retried request with the same `Idempotency-Key` acts once.

The first request claims the key by inserting its row (committed before it acts); the
unique (api key, idempotency key) pair makes a concurrent retry fail to claim it, so it
cannot act a second time. When the first one ends, its answer is stored with the row and
every later retry with the same request gets that answer back; the same key with another
request is refused. Rows older than a day are forgotten as new ones arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from threads.errors import PawpostError
from threads.models import IdempotentRequest

RETENTION = timedelta(hours=24)


class KeyReused(PawpostError):
    """This idempotency key already went with another request."""


class StillRunning(PawpostError):
    """The first request with this key has not finished yet."""


@dataclass(frozen=True)
class Replay:
    """The stored answer of the first request with this key."""

    status: int
    content_type: str
    body: str


def _judge(row: IdempotentRequest, request_hash: str) -> Replay:
    if row.request_hash != request_hash:
        raise KeyReused(f"idempotency key {row.key[:40]!r} was used for another request")
    if row.status is None:
        raise StillRunning(f"idempotency key {row.key[:40]!r} is still being answered")
    return Replay(row.status, row.content_type or "application/json", row.body or "")


def claim(session: Session, api_key_id: int, key: str, request_hash: str, now: datetime) -> int | Replay:
    """The new row's id when this request is the first with `key`; else the first answer to
    replay. Raises `KeyReused` (another request) or `StillRunning` (the first is running)."""
    session.execute(delete(IdempotentRequest).where(IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.created_at < now - RETENTION))
    existing = session.scalar(select(IdempotentRequest).where(IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key))
    if existing is not None:
        return _judge(existing, request_hash)
    row = IdempotentRequest(api_key_id=api_key_id, key=key, request_hash=request_hash, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request claimed it between our read and our insert.
        raced = session.scalar(select(IdempotentRequest).where(IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key))
        if raced is None:
            raise
        return _judge(raced, request_hash)
    return row.id


def record_answer(session: Session, row_id: int, status: int, content_type: str, body: str) -> None:
    """Keep the first request's answer for its retries (in the transaction of its work)."""
    session.execute(update(IdempotentRequest).where(IdempotentRequest.id == row_id).values(status=status, content_type=content_type[:100], body=body))


def release(session: Session, row_id: int) -> None:
    """The first request failed unexpectedly: let a retry act."""
    session.execute(delete(IdempotentRequest).where(IdempotentRequest.id == row_id))
