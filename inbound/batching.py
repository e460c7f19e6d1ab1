"""The SMTP server's database work, batched: one thread per kind answers every session.

Twenty sessions each waiting for their own query, INSERT and COMMIT would spend the
server's time on round trips and the database's on transactions. Instead each request
goes to a thread that takes whatever is waiting and answers it all in one go:

- `GroupCommitWriter` inserts every waiting accepted email with one multi-row INSERT
  (SQLAlchemy Core) in one transaction, commits, and only then resolves each session's
  future, so each session answers `250` after the commit that holds its email. A failed
  batch fails every future in it (each session answers `451`), and nothing of it was
  stored.
- `RecipientChecker` looks up every waiting RCPT address with one query.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from inbound.route import Recipient, RoutingError, check_recipients
from threads.models import InboundEmail

logger = logging.getLogger(__name__)

# Enough to absorb a burst from every session at once; one INSERT of this many ~1 KB
# emails is still a small statement.
MAX_BATCH = 200

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


@dataclass
class _Waiting(Generic[Request, Answer]):
    request: Request
    future: asyncio.Future[Answer]
    loop: asyncio.AbstractEventLoop


class BatchWorker(Generic[Request, Answer]):
    """A thread that handles whatever requests wait, together.

    `ask` is awaited on the server's event loop; the thread answers a whole batch with
    one wake-up of the loop. With `keep_connection`, the connection stays open between
    batches (no pool checkout, ping and reset per request, which matters for the small
    batches of RCPT checks); one the database closed meanwhile is replaced and the
    batch tried once more. Otherwise each batch checks a connection out of the pool
    (with its ping), so nothing is ever re-run on a connection in an unknown state.
    """

    name = "pawpost-batch"
    keep_connection = False

    def __init__(self, session_factory: sessionmaker[Session], *, max_batch: int = MAX_BATCH) -> None:
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, Engine):
            raise TypeError("the session factory must be bound to an engine")
        self.engine = bind
        self.max_batch = max_batch
        self._connection: Connection | None = None
        self._waiting: queue.SimpleQueue[_Waiting[Request, Answer] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    async def ask(self, request: Request) -> Answer:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        self._waiting.put(_Waiting(request, future, loop))
        return await future

    def close(self, timeout: float = 30.0) -> None:
        """Answer what was submitted, then stop the thread and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._waiting.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._drop_connection()

    def handle(self, connection: Connection, requests: list[Request]) -> Sequence[Answer | BaseException]:
        """One answer (or the error for that request) per request, in order; raising fails all."""
        raise NotImplementedError

    def connect(self) -> Connection:
        return self.engine.connect()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._waiting.get()
            batch = [] if first is None else [first]
            stopping = first is None
            while len(batch) < self.max_batch:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                self._answer(batch)
        self._drop_connection()

    def _answer(self, batch: list[_Waiting[Request, Answer]]) -> None:
        answers: Sequence[Answer | BaseException]
        try:
            answers = self._handle([w.request for w in batch])
        except Exception as error:  # every session of the batch answers 451; its MTA retries
            answers = [error] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Answer], Answer | BaseException]]] = {}
        for waiting, answer in zip(batch, answers, strict=True):
            by_loop.setdefault(waiting.loop, []).append((waiting.future, answer))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
        self.after_answer(answers)

    def after_answer(self, answers: Sequence[Answer | BaseException]) -> None:
        """Work that follows the answers (the sessions are already told); must not raise."""

    def _handle(self, requests: list[Request]) -> Sequence[Answer | BaseException]:
        if not self.keep_connection:
            with self.connect() as connection:
                return self.handle(connection, requests)
        connection = self._connection
        reused = connection is not None and not connection.closed and not connection.invalidated
        if connection is None or not reused:
            self._drop_connection()
            connection = self._connection = self.connect()
        try:
            return self.handle(connection, requests)
        except DBAPIError as error:
            self._drop_connection()
            if not (reused and error.connection_invalidated):
                raise
        # The database dropped the idle connection (a restart, a cut link): once more.
        self._connection = self.connect()
        return self.handle(self._connection, requests)

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                logger.debug("closing a broken connection failed", exc_info=True)
            self._connection = None


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, answer in settled:
        if future.done():  # the session went away (cancelled) while waiting
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)


class GroupCommitWriter(BatchWorker[dict[str, Any], int]):
    """Stores accepted emails in batches; each answer is the stored row's id.

    `after_commit(ids)` runs in this thread after each commit: after the sessions are
    answered (the queue push: a sender need not wait for it), or before when
    `answer_after_hook` (processing in place with a process-local queue, so that the
    outcome exists when `250` arrives). A fault there is logged, never raised: the
    email is committed, and the repair step enqueues it.
    """

    name = "pawpost-smtp-writer"
    keep_connection = True

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        after_commit: Callable[[list[int]], None],
        *,
        answer_after_hook: bool = False,
    ) -> None:
        super().__init__(session_factory)
        self.after_commit = after_commit
        self.answer_after_hook = answer_after_hook
        self.arrays = self.engine.dialect.name == "postgresql"

    def connect(self) -> Connection:
        connection = self.engine.connect()
        if self.arrays:
            # One statement is one transaction: no BEGIN and COMMIT round trips. A stale
            # connection fails when the INSERT is sent, so the retry stores nothing twice.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def handle(self, connection: Connection, requests: list[dict[str, Any]]) -> list[int]:
        if self.arrays:
            arrays = {name: [row[name] for row in requests] for name in _COLUMNS}
            ids = sorted(connection.execute(_INSERT_ARRAYS, arrays).scalars())
        else:
            with connection.begin():  # BEGIN IMMEDIATE on SQLite
                ids = list(connection.execute(_INSERT_ROWS, requests).scalars())
        if self.answer_after_hook:
            self._after_commit(ids)
        return ids

    def after_answer(self, answers: Sequence[int | BaseException]) -> None:
        if not self.answer_after_hook:
            self._after_commit([a for a in answers if not isinstance(a, BaseException)])

    def _after_commit(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            self.after_commit(ids)
        except Exception:
            logger.exception("after-commit hook failed for %d stored email(s)", len(ids))


class RecipientChecker(BatchWorker[str, Recipient]):
    """Answers every waiting RCPT address with one query (`inbound.route.check_recipients`)."""

    name = "pawpost-smtp-rcpt"
    keep_connection = True  # reads only: running a lookup again is always safe

    def __init__(self, session_factory: sessionmaker[Session], reply_domain: str) -> None:
        super().__init__(session_factory)
        self.reply_domain = reply_domain

    def connect(self) -> Connection:
        connection = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            # Reads only: no BEGIN and ROLLBACK around every lookup. (SQLite keeps its
            # transactions: its engine opens each one with BEGIN IMMEDIATE.)
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def handle(self, connection: Connection, requests: list[str]) -> list[Recipient | RoutingError]:
        try:
            return check_recipients(connection, requests, self.reply_domain)
        finally:
            if connection.in_transaction():
                connection.rollback()
