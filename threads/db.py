"""Engines and sessions for SQLite (the embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import select
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Map the URLs operators write to the drivers Pawpost ships with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings every Pawpost process needs.

    SQLite gets foreign keys, WAL (so the portal reads while SMTP writes) and a busy
    timeout, because the embedded default runs several writers in one process.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        lend_only_live_connections(engine)
    return engine


# A pooled connection idle longer than this is pinged before it is lent (see below).
PING_WHEN_IDLE_SECONDS = 10.0


def lend_only_live_connections(engine: Engine) -> None:
    """Replace a pooled PostgreSQL connection the server has closed before a request gets it.

    `pool_pre_ping` costs every checkout a round trip (`SELECT 1`): 9 % of the portal's wall
    time under `bench.portal`, one of a small page's seven round trips. When PostgreSQL restarts, fails over or is cut off, the server's
    side closes and the client's socket turns readable (EOF, or the FATAL message before
    it); an idle connection of a healthy server has nothing to read. So a connection is
    lent as it is when its socket is quiet and it was in use within the last
    `PING_WHEN_IDLE_SECONDS`; otherwise it is pinged as `pool_pre_ping` would (that also
    covers a server host that vanished without closing anything, which only a write
    notices). A failed ping replaces every pooled connection, like `pool_pre_ping`.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def lent(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("idle_since", 0.0)
        if idle < PING_WHEN_IDLE_SECONDS and _socket_quiet(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error
            raise


def _socket_quiet(dbapi_connection: Any) -> bool:
    """True when the (psycopg) connection is open and nothing waits to be read on it."""
    if getattr(dbapi_connection, "closed", True) or getattr(dbapi_connection, "broken", True):
        return False
    if not hasattr(select, "poll"):  # Windows: no poll(); ping instead
        return False
    try:
        fd = dbapi_connection.pgconn.socket
    except Exception:  # the connection has no socket any more
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) so writers take the lock
    # up front instead of failing on upgrade with "database is locked".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
