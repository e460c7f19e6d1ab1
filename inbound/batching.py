"""The SMTP server's database work, batched on its event loop.

Twenty sessions each waiting for their own query, INSERT and COMMIT would spend the
server's time on round trips and the database's on transactions. Instead each kind of
request waits in a `Batcher`: while one batch is at the database, the requests that
arrive meanwhile gather, and go together in the next statement.

- `GroupCommitWriter` stores every waiting accepted email with one INSERT (one
  transaction) and only then resolves each session's future, so each session answers
  `250` after the commit that holds its email. A failed batch fails every future in it
  (each session answers `451`), and nothing of it was stored.
- `RecipientChecker` looks up every waiting RCPT address with one query per kind
  (reply tokens, VERP outbox ids).

The statements go through an `inbound.links.Link`: on PostgreSQL straight from the
event loop, so a batch costs no thread hand-off at all.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY

from inbound.links import Link, one_of
from inbound.route import Recipient, RoutingError, lookup_recipients
from threads.models import InboundEmail, OutboundEmail, Thread

logger = logging.getLogger(__name__)

# Enough to absorb a burst from every session at once; one INSERT of this many ~1 KB
# emails is still a small statement.
MAX_BATCH = 200
# The raw bytes one group commit may carry. PostgreSQL refuses a message over 1 GB (45
# emails of 24 MB in one INSERT answered 43 of them 451), and the batch's bytes are held
# two or three times over while it is sent; a single email bigger than this goes alone.
MAX_BATCH_BYTES = 64 * 1024 * 1024
# A batch bigger than this is not kept referenced by the link until the next one.
FORGET_AFTER_BYTES = 1024 * 1024
# How long the queue pusher gathers committed ids before one push carries them all.
PUSH_LINGER_SECONDS = 0.02

_TABLE = InboundEmail.__table__
_COLUMNS = (
    "business_id", "thread_id", "received_at", "envelope_from", "envelope_to", "message_id_header", "size", "raw", "outcome"
)
# SQLite: SQLAlchemy renders one multi-row INSERT … VALUES (…), (…) RETURNING per batch.
_INSERT_ROWS = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
# PostgreSQL: one INSERT … SELECT FROM unnest(<one array per column>), the same SQL text
# for every batch size (prepared once by psycopg); ids come from the sequence in order.
_ROWS = func.unnest(*(bindparam(name, type_=ARRAY(_TABLE.c[name].type)) for name in _COLUMNS)).table_valued(
    *_COLUMNS, with_ordinality="position"
).render_derived(name="batch")
_INSERT_ARRAYS = (
    insert(_TABLE)
    .from_select(_COLUMNS, select(*(_ROWS.c[name] for name in _COLUMNS)).order_by(_ROWS.c.position))
    .returning(_TABLE.c.id)
)

Request = TypeVar("Request")
Answer = TypeVar("Answer")
Answers = Sequence[Any]  # one answer, or the exception for that request, per request


class Batcher(Generic[Request, Answer]):
    """Requests awaited on one event loop, handled together, one batch at a time.

    `handle(requests)` returns one answer (or the error for that request) per request,
    in order; raising fails the whole batch. It runs on the loop, so it must await its
    I/O (an `inbound.links.Link` does). `after_answer` runs once the batch's futures are
    resolved, for work no session should wait for. With `weigh`, a batch also stops
    before its requests' weights pass `max_weight` (at least one request per batch).
    """

    def __init__(
        self,
        name: str,
        handle: Callable[[list[Request]], Awaitable[Answers]],
        *,
        after_answer: Callable[[Answers], None] | None = None,
        max_batch: int = MAX_BATCH,
        weigh: Callable[[Request], int] | None = None,
        max_weight: int = 0,
    ) -> None:
        self.name = name
        self._handle = handle
        self._after_answer = after_answer
        self.max_batch = max_batch
        self._weigh = weigh
        self.max_weight = max_weight
        self.heaviest_batch = 0  # the largest total weight one batch carried (for the bench and tests)
        self._waiting: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False

    async def ask(self, request: Request) -> Answer:
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush(), name=self.name)
        return await future

    async def close(self) -> None:
        """Refuse new requests and wait until those already asked are answered."""
        self._closed = True
        if self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                size = self._batch_size()
                batch = self._waiting[:size]
                del self._waiting[:size]
                await self._answer(batch)
                del batch  # the requests (raw emails) go as soon as they are answered
        finally:
            self._flushing = None

    def _batch_size(self) -> int:
        """How many waiting requests the next batch takes: MAX_BATCH, and within max_weight."""
        if self._weigh is None:
            return min(self.max_batch, len(self._waiting))
        total = count = 0
        for request, _future in self._waiting[: self.max_batch]:
            weight = self._weigh(request)
            if count and total + weight > self.max_weight:
                break
            total += weight
            count += 1
        self.heaviest_batch = max(self.heaviest_batch, total)
        return count

    async def _answer(self, batch: list[tuple[Request, asyncio.Future[Answer]]]) -> None:
        answers: Answers
        try:
            answers = await self._handle([request for request, _ in batch])
        except Exception as error:  # every session of the batch answers 451; its MTA retries
            answers = [error] * len(batch)
        except BaseException as error:  # cancelled with the loop: nobody is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError(f"{self.name} stopped"))
            raise error
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():  # the session went away (cancelled) while waiting
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
        if self._after_answer is not None:
            try:
                self._after_answer(answers)
            except Exception:
                logger.exception("%s: the after-answer step failed", self.name)


class GroupCommitWriter:
    """Stores accepted emails in batches; each answer is the stored row's id.

    `after_commit(ids)` follows each commit. With `answer_after_hook` (a process-local
    queue: each email is processed in place, so its outcome exists when `250` arrives)
    it runs in a thread before the sessions are answered. Otherwise it runs after them
    (the queue push: a sender need not wait for it) and must be quick. A fault there is
    logged, never raised: the emails are committed, and the repair step enqueues them.
    """

    def __init__(self, link: Link, after_commit: Callable[[list[int]], None], *, answer_after_hook: bool = False) -> None:
        self.link = link
        self.after_commit = after_commit
        self.answer_after_hook = answer_after_hook
        self.batcher: Batcher[dict[str, Any], int] = Batcher(
            "pawpost-smtp-writer",
            self._store,
            after_answer=None if answer_after_hook else self._committed,
            weigh=_raw_size,
            max_weight=MAX_BATCH_BYTES,
        )

    async def ask(self, row: dict[str, Any]) -> int:
        """Store one `received` row (the keys of `inbound.accept.received_row`); its id."""
        return await self.batcher.ask(row)

    async def close(self) -> None:
        await self.batcher.close()
        await self.link.close()

    async def _store(self, rows: list[dict[str, Any]]) -> list[int]:
        if self.link.dialect == "postgresql":
            arrays = {name: [row[name] for row in rows] for name in _COLUMNS}
            ids = sorted(row[0] for row in await self.link.rows(_INSERT_ARRAYS, arrays))
            del arrays
        else:
            ids = [row[0] for row in await self.link.rows(_INSERT_ROWS, rows)]
        if sum(len(row["raw"]) for row in rows) > FORGET_AFTER_BYTES:
            self.link.forget_parameters()
        if self.answer_after_hook:
            await asyncio.get_running_loop().run_in_executor(None, self._committed, ids)
        return ids

    def _committed(self, ids: Answers) -> None:
        stored = [i for i in ids if not isinstance(i, BaseException)]
        if not stored:
            return
        try:
            self.after_commit(stored)
        except Exception:
            logger.exception("after-commit hook failed for %d stored email(s)", len(stored))


def _raw_size(row: dict[str, Any]) -> int:
    return len(row["raw"])


@cache
def _active_threads(dialect: str) -> Select[Any]:
    """(token, thread id, business id) of the active threads whose current token is asked."""
    threads = Thread.__table__.c
    return select(threads.reply_token, threads.id, threads.business_id).where(
        one_of(threads.reply_token, "tokens", dialect), threads.active
    )


@cache
def _outboxes(dialect: str) -> Select[Any]:
    """(outbox id, thread id, business id) of the VERP addresses' outbox rows."""
    outboxes = OutboundEmail.__table__.c
    return select(outboxes.id, outboxes.thread_id, outboxes.business_id).where(one_of(outboxes.id, "ids", dialect))


class RecipientChecker:
    """Answers every waiting RCPT address with one query per kind (`lookup_recipients`)."""

    def __init__(self, link: Link, reply_domain: str, secret_key: str) -> None:
        self.link = link
        self.reply_domain = reply_domain
        self.secret_key = secret_key
        self.batcher: Batcher[str, Recipient] = Batcher("pawpost-smtp-rcpt", self._check)

    async def ask(self, address: str) -> Recipient:
        """The recipient this address names; raises the `RoutingError` to answer with."""
        return await self.batcher.ask(address)

    async def close(self) -> None:
        await self.batcher.close()
        await self.link.close()

    async def _check(self, addresses: list[str]) -> list[Recipient | RoutingError]:
        lookup = lookup_recipients(addresses, self.reply_domain, self.secret_key)
        threads: dict[str, tuple[int, int]] = {}
        outboxes: dict[int, tuple[int | None, int]] = {}
        if lookup.tokens:
            rows = await self.link.rows(_active_threads(self.link.dialect), {"tokens": sorted(set(lookup.tokens.values()))})
            threads = {token: (thread_id, business_id) for token, thread_id, business_id in rows}
        if lookup.outbox_ids:
            rows = await self.link.rows(_outboxes(self.link.dialect), {"ids": sorted(set(lookup.outbox_ids.values()))})
            outboxes = {outbox_id: (thread_id, business_id) for outbox_id, thread_id, business_id in rows}
        return lookup.answers(threads, outboxes)


class QueuePusher:
    """Hands committed ids to the queue from its own thread, many commits per push.

    A push is a network round trip that must not stall the event loop, and each one
    costs the server about as much CPU as a whole batch's INSERT. So the thread waits
    `linger` seconds after the first commit it is handed, and pushes every id gathered
    by then at once: under load, a push per `linger` instead of one per commit. The
    worker starts on them that much later, against a notification delay of minutes.
    """

    def __init__(self, push: Callable[[list[int]], None], *, linger: float = PUSH_LINGER_SECONDS) -> None:
        self._push = push
        self.linger = linger
        self._waiting: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pawpost-smtp-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, ids: list[int]) -> None:
        self._waiting.put(ids)

    def close(self, timeout: float = 30.0) -> None:
        """Push what was handed over, then stop the thread."""
        if self._thread.is_alive():
            self._waiting.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            ids: list[int] = []
            item = self._waiting.get()
            if item is not None:
                time.sleep(self.linger)
            while True:
                if item is None:
                    stopping = True
                else:
                    ids.extend(item)
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
            if ids:
                try:
                    self._push(ids)
                except Exception:  # the rows are committed: the repair step enqueues them
                    logger.exception("queue push failed for %d stored email(s)", len(ids))
