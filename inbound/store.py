"""Group commit: the SMTP server's one writer of raw emails.

Twenty sessions each waiting for their own INSERT and COMMIT would spend the server's
time on round trips and the database's on fsyncs. Instead every accepted email is
handed to one writer thread, which takes whatever is waiting, inserts it with one
multi-row INSERT (SQLAlchemy Core) in one transaction, commits, and only then resolves
each session's future, so each session answers `250` after the commit that holds its
email. A failed batch fails every future in it (each session answers `451`), and
nothing of it was stored.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from threads.models import InboundEmail

logger = logging.getLogger(__name__)

# Enough to absorb a burst from every session at once; one INSERT of this many ~1 KB
# emails is still a small statement.
MAX_BATCH = 200

_TABLE = InboundEmail.__table__
_INSERT = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)


@dataclass
class _Pending:
    row: dict[str, Any]
    future: Future[int] = field(default_factory=Future)


class GroupCommitWriter:
    """One thread that stores accepted emails in batches; `submit` returns the row's future id.

    `after_commit(ids)` runs in the writer thread after each commit and before the
    futures resolve (the queue push, or in-process processing with a local queue); it
    must not raise.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        after_commit: Callable[[list[int]], None],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.session_factory = session_factory
        self.after_commit = after_commit
        self.max_batch = max_batch
        self._waiting: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pawpost-smtp-writer", daemon=True)
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    def submit(self, row: dict[str, Any]) -> Future[int]:
        pending = _Pending(row)
        if self._closed:
            pending.future.set_exception(RuntimeError("the writer is closed"))
        else:
            self._waiting.put(pending)
        return pending.future

    def close(self, timeout: float = 30.0) -> None:
        """Store what was submitted, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._waiting.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._waiting.get()
            batch: list[_Pending] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
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
                self._write(batch)

    def _write(self, batch: Sequence[_Pending]) -> None:
        try:
            with self.session_factory() as session, session.begin():
                ids = list(session.connection().execute(_INSERT, [p.row for p in batch]).scalars())
        except Exception as error:  # every session of the batch answers 451; its MTA retries
            for pending in batch:
                pending.future.set_exception(error)
            return
        try:
            self.after_commit(ids)
        except Exception:  # committed is committed: the repair step re-enqueues lost pushes
            logger.exception("after-commit hook failed for %d stored email(s)", len(ids))
        for pending, inbound_email_id in zip(batch, ids, strict=True):
            pending.future.set_result(inbound_email_id)
