"""One kept database connection that the SMTP server's event loop awaits.

The accept path runs two statements per email (the RCPT lookup and the group-commit
INSERT), so how they reach the database is most of what Pawpost adds to a bare SMTP
server. Handing each batch to a thread and back cost about as much CPU as running the
statements: every hand-off wakes a thread, contends for the GIL and wakes the loop again.

- `PsycopgLink` (PostgreSQL) runs the statements on the event loop itself, with
  psycopg's async connection: no thread at all. The statements are still SQLAlchemy
  Core, compiled once by the engine's dialect with its bind processors.
- `ThreadLink` (any other engine: SQLite, whose calls block) runs them in the link's
  own thread, each in its own transaction.

Either way the connection stays open between batches (no pool checkout, ping and reset
per statement). A kept connection that the database dropped meanwhile (a restart, a cut
link) is replaced and the statement run once more: it failed as it was sent, so it never
ran. Any other failure is raised to the caller, whose sessions answer `451`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from sqlalchemy import Column, ColumnElement, Connection, Engine, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine.interfaces import Compiled, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

logger = logging.getLogger(__name__)

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]]
CONNECT_TIMEOUT_SECONDS = 10
# A psycopg named placeholder as SQLAlchemy renders it (a literal % is rendered as %%).
_BINARY_PLACEHOLDER = re.compile(r"(?<!%)%\((\w+)\)s")


class Link(Protocol):
    """Where a batch's statement goes; `rows` is awaited on the server's event loop."""

    dialect: str

    async def rows(self, statement: Executable, parameters: Parameters) -> list[tuple[Any, ...]]: ...

    def forget_parameters(self) -> None: ...

    async def close(self) -> None: ...


def link_for(engine: Engine, name: str) -> Link:
    """The fastest link this engine allows: on the loop for psycopg, else a thread."""
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return PsycopgLink(engine, name)
    return ThreadLink(engine, name)


def one_of(column: Column[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column` equal to any value of the list parameter `name`, in a form `dialect` runs.

    PostgreSQL takes the list as one array (`= ANY(:name)`), so the SQL text is the same
    for every list length and psycopg prepares it once; elsewhere it is an expanding IN.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class _Compiled:
    """A Core statement as psycopg runs it: its SQL text and how each parameter is bound."""

    sql: str
    compiled: Compiled
    processors: Mapping[str, Callable[[Any], Any]]

    def values(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        values = self.compiled.construct_params(parameters)
        for name, process in self.processors.items():
            values[name] = process(values[name])
        return values


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    """Compiled by the engine's dialect, with the bind processors SQLAlchemy would apply.

    Every parameter is sent in binary (`%(name)b`): psycopg's text format escapes each
    element of an array in Python (the raw email as hex bytea), which cost ~30 µs per
    stored email; binary copies the bytes. The SQL casts each parameter to its column type.
    """
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    processors = {}
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    return _Compiled(_BINARY_PLACEHOLDER.sub(r"%(\1)b", str(compiled)), compiled, processors)


class PsycopgLink:
    """PostgreSQL from the event loop: one autocommit psycopg async connection.

    Autocommit because each batch is one statement: no BEGIN and COMMIT round trips, and
    the INSERT is committed when its answer arrives.
    """

    dialect = "postgresql"

    def __init__(self, engine: Engine, name: str) -> None:
        self.name = name
        self._engine_dialect = engine.dialect
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        # An unreachable host must fail the batch (451) well before a sender's MTA gives up
        # on the session; a `?connect_timeout=` in the URL wins.
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        self._connect_args = (args, kwargs)
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._cursor: psycopg.AsyncCursor[Any] | None = None
        self._compiled: dict[int, tuple[Executable, _Compiled]] = {}

    async def rows(self, statement: Executable, parameters: Parameters) -> list[tuple[Any, ...]]:
        if not isinstance(parameters, Mapping):
            raise TypeError("PsycopgLink runs one parameter set per statement (send arrays for many rows)")
        compiled = self._compile(statement)
        sql, values = compiled.sql, compiled.values(parameters)
        reused = self._connection is not None and not self._connection.closed
        connection = await self._connect()
        try:
            return await self._run(connection, sql, values)
        except psycopg.OperationalError:
            if not connection.broken:
                raise
            await self._drop()
            if not reused:
                raise
        logger.info("%s: the database dropped the kept connection; reconnecting", self.name)
        return await self._run(await self._connect(), sql, values)

    async def close(self) -> None:
        await self._drop()

    def forget_parameters(self) -> None:
        """Let go of the last statement's parameters: the kept cursor holds them (psycopg keeps
        the query it ran) until the next statement, which after a big batch is megabytes of
        raw email held for as long as the server is idle."""
        self._cursor = None

    def _compile(self, statement: Executable) -> _Compiled:
        # Keyed by identity, with the statement kept alive: the callers pass module constants.
        found = self._compiled.get(id(statement))
        if found is None:
            found = self._compiled[id(statement)] = (statement, _compile(statement, self._engine_dialect))
        return found[1]

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            args, kwargs = self._connect_args
            self._connection = await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)
        return self._connection

    async def _run(self, connection: psycopg.AsyncConnection[Any], sql: str, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        # One cursor per connection: it keeps the dumpers it chose for each parameter type.
        if self._cursor is None or self._cursor.connection is not connection:
            self._cursor = connection.cursor()
        cursor = self._cursor
        await cursor.execute(sql, values)  # type: ignore[arg-type]
        return await cursor.fetchall() if cursor.description is not None else []

    async def _drop(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                logger.debug("%s: closing a broken connection failed", self.name, exc_info=True)


class ThreadLink:
    """Any engine, from the link's own thread: each statement in its own transaction.

    On SQLite, `threads.db` begins every transaction with BEGIN IMMEDIATE, so the
    INSERT never fails on a lock upgrade.
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self.name = name
        self.dialect = engine.dialect.name
        self._engine = engine
        self._connection: Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def rows(self, statement: Executable, parameters: Parameters) -> list[tuple[Any, ...]]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._rows, statement, parameters)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._drop)
        self._thread.shutdown(wait=False)

    def forget_parameters(self) -> None:
        """Nothing to do: SQLAlchemy closes the cursor, and its parameters, with each result."""

    def _rows(self, statement: Executable, parameters: Parameters) -> list[tuple[Any, ...]]:
        reused = self._connection is not None and not self._connection.closed and not self._connection.invalidated
        try:
            return self._run(statement, parameters)
        except DBAPIError as error:
            self._drop()
            if not (reused and error.connection_invalidated):
                raise
        logger.info("%s: the database dropped the kept connection; reconnecting", self.name)
        return self._run(statement, parameters)

    def _run(self, statement: Executable, parameters: Parameters) -> list[tuple[Any, ...]]:
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._drop()
            self._connection = self._engine.connect()
        with self._connection.begin():
            result = self._connection.execute(statement, parameters)  # type: ignore[arg-type]
            return [tuple(row) for row in result] if result.returns_rows else []

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                logger.debug("%s: closing a broken connection failed", self.name, exc_info=True)
