"""What every signed-in request costs before its page: one statement for the session, the
person, the business and the header's quarantine count; no cookie sent back unchanged; and
on PostgreSQL no transaction around pages that only read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from tests.portal.conftest import Clock, World, csrf_token, sign_in_as
from threads.models import StaffSession

COOKIE = "pawpost_session"


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE (see threads.db)
            seen.append(statement)

    engine = app.extensions["pawpost"].engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def held_in_header(page: str) -> str:
    found = re.search(r'<span class="count" id="held-count"[^>]*>(\d+)</span>', page)
    assert found, page[:500]
    return found.group(1)


def test_the_session_and_the_header_count_come_in_the_first_statement(
    app: Flask, client: FlaskClient, world: World, statements: list[str]
) -> None:
    sign_in_as(app, client, world.senior)
    client.get("/today")
    statements.clear()
    page = client.get("/today")
    assert page.status_code == 200
    assert "staff_sessions" in statements[0] and "inbound_emails" in statements[0]
    assert not any("inbound_emails" in s for s in statements[1:])
    assert held_in_header(page.get_data(as_text=True)) == "2"


def test_the_header_counts_only_the_business_own_held_emails(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in_as(app, client, world.foreign_senior)
    assert held_in_header(client.get("/today").get_data(as_text=True)) == "1"
    sign_in_as(app, client, world.basic)
    assert 'id="held-count"' not in client.get("/today").get_data(as_text=True)


def test_the_count_after_a_change_in_the_same_request_is_read_again(app: Flask, client: FlaskClient, world: World) -> None:
    """A POST may change the quarantine before its page shows the count: it is not the
    count from the start of the request."""
    sign_in_as(app, client, world.senior)
    token = csrf_token(client)
    response = client.post(f"/quarantine/{world.held.id}/discard", data={"csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200
    assert held_in_header(response.get_data(as_text=True)) == "1"
    assert client.get("/api/unread").get_json()["held"] == 1


def test_an_unchanged_session_cookie_is_not_sent_again(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in_as(app, client, world.senior)
    client.get("/today")  # the first page puts the form token in the session: sent once
    kept = client.get_cookie(COOKIE)
    assert kept is not None
    for path in ("/today", "/messages", "/api/unread"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers, path
    still = client.get_cookie(COOKIE)
    assert still is not None and still.value == kept.value
    response = client.post("/signout", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and "Set-Cookie" in response.headers
    assert client.get("/today").status_code == 302


@pytest.fixture
def transaction_states(app: Flask) -> Iterator[list[str]]:
    """After each statement: is the PostgreSQL connection inside a transaction (psycopg's own
    record of the server's answer)?"""
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        seen.append(conn.connection.dbapi_connection.info.transaction_status.name)

    engine = app.extensions["pawpost"].engine
    event.listen(engine, "after_cursor_execute", record)
    yield seen
    event.remove(engine, "after_cursor_execute", record)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("path", ["/staff", "/families", "/schedule", "/audit"])
def test_pages_that_only_read_run_without_a_transaction(
    app: Flask, client: FlaskClient, world: World, transaction_states: list[str], path: str
) -> None:
    """No BEGIN and ROLLBACK around their statements (two round trips of a small page's five)."""
    sign_in_as(app, client, world.admin)
    transaction_states.clear()
    assert client.get(path).status_code == 200
    assert transaction_states and set(transaction_states) == {"IDLE"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_other_requests_keep_their_transaction(app: Flask, client: FlaskClient, world: World, transaction_states: list[str]) -> None:
    sign_in_as(app, client, world.admin)
    transaction_states.clear()
    assert client.get("/messages").status_code == 200
    assert set(transaction_states) == {"INTRANS"}
    token = csrf_token(client)
    transaction_states.clear()
    # The Families page's view again, for a refused form: a POST, so in a transaction.
    refused = client.post("/families", data={"csrf_token": token, "name": "", "contact_name": "", "contact_email": ""})
    assert refused.status_code == 400
    assert set(transaction_states) == {"INTRANS"}


def test_a_reading_page_still_records_when_its_viewer_was_last_seen(
    timed_app: Flask, world: World, db: Session, clock: Clock
) -> None:
    client = timed_app.test_client()
    sign_in_as(timed_app, client, world.admin)
    assert client.get("/staff").status_code == 200
    clock.at += timedelta(minutes=6)
    assert client.get("/staff").status_code == 200
    db.expire_all()
    seen = db.scalars(select(StaffSession.last_seen_at).where(StaffSession.staff_id == world.admin.id)).all()
    assert [moment.replace(tzinfo=None) for moment in seen] == [clock.at.replace(tzinfo=None)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_pages_answer_after_the_database_ended_every_connection(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    """A restart or failover ends the pooled connections; the next requests, reading or
    writing, get new ones instead of an error (no SELECT 1 before each request since)."""
    pids: list[int] = []
    engine = app.extensions["pawpost"].engine
    event.listen(engine, "connect", lambda connection, _record: pids.append(connection.info.backend_pid))
    sign_in_as(app, client, world.admin)
    assert [client.get(path).status_code for path in ("/staff", "/messages")] == [200, 200]
    assert pids
    for pid in pids:
        assert db.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    db.rollback()
    assert [client.get(path).status_code for path in ("/staff", "/messages", "/audit", "/today")] == [200, 200, 200, 200]
