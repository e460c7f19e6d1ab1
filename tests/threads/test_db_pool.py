"""PostgreSQL connections are lent without a liveness round trip when they are plainly alive,
and replaced when the server has closed them (a restart, a failover, an administrator)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.conftest import PG_URL, postgres_reason, require
from threads import db as threads_db
from threads.db import make_engine


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    reason = postgres_reason()
    require(reason is None, reason or "")
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def count_pings(engine: Engine) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        pings.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_backend_pid()")))


def test_a_connection_in_steady_use_is_lent_without_a_ping(pg_engine: Engine) -> None:
    pings = count_pings(pg_engine)
    first = backend_pid(pg_engine)
    assert [backend_pid(pg_engine) for _ in range(5)] == [first] * 5
    assert pings == []


def test_a_connection_the_server_ended_is_replaced_before_it_is_lent(pg_engine: Engine) -> None:
    first = backend_pid(pg_engine)
    other = make_engine(PG_URL)
    try:
        with other.connect() as connection:
            # Waits (up to 5 s) until the backend has exited and closed its socket.
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first})
            connection.commit()
    finally:
        other.dispose()
    # The pool's only connection is dead; the next request still gets an answer.
    with pg_engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1
    assert backend_pid(pg_engine) != first


def test_a_connection_idle_for_long_is_pinged_first(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a write notices a server host that vanished without closing its sockets."""
    pings = count_pings(pg_engine)
    first = backend_pid(pg_engine)
    monkeypatch.setattr(threads_db, "PING_WHEN_IDLE_SECONDS", 0.0)
    assert backend_pid(pg_engine) == first
    assert pings == [1]
