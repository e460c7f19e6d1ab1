"""Forgotten passwords: the same answer for every address, a single-use link valid an hour,
and limits per address and per client."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import PASSWORD
from tests.portal.auth_helpers import NEW_PASSWORD, link_path, outbox, sign_in
from tests.portal.conftest import Clock, World, csrf_token, sign_in_as


def ask(client: FlaskClient, address: str):  # type: ignore[no-untyped-def]
    return client.post("/forgot", data={"csrf_token": csrf_token(client, "/forgot"), "email": address})


def test_the_sign_in_page_links_to_forgot_password(client: FlaskClient) -> None:
    page = client.get("/signin").get_data(as_text=True)
    assert '<a href="/forgot">Forgot password?</a>' in page


def test_known_and_unknown_addresses_get_the_same_answer(timed_app: Flask, world: World, db: Session) -> None:
    db.rollback()
    known = ask(timed_app.test_client(), "sam@a.test")
    unknown = ask(timed_app.test_client(), "nobody@a.test")
    assert known.status_code == unknown.status_code == 200
    normalise = lambda response, address: response.get_data(as_text=True).replace(address, "ADDRESS")  # noqa: E731
    strip_token = lambda html: html.split('name="csrf-token"')[0] + html.split('name="csrf-token"')[1].split(">", 1)[1]  # noqa: E731
    assert strip_token(normalise(known, "sam@a.test")) == strip_token(normalise(unknown, "nobody@a.test"))
    (row,) = outbox(db, "password_reset")
    assert row.recipient_email == "sam@a.test" and row.thread_id is None


def test_a_reset_link_works_once_within_an_hour_and_ends_other_sessions(
    timed_app: Flask, world: World, db: Session, clock: Clock
) -> None:
    db.rollback()
    elsewhere = timed_app.test_client()
    sign_in_as(timed_app, elsewhere, world.senior)
    ask(timed_app.test_client(), "sam@a.test")
    path = link_path(outbox(db, "password_reset")[0], "reset")
    browser = timed_app.test_client()
    clock.at += timedelta(minutes=59)
    done = browser.post(path, data={"csrf_token": csrf_token(browser, path), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.location == "/messages"
    assert browser.get("/messages").status_code == 200
    assert elsewhere.get("/messages").status_code == 302  # the old password's sessions ended
    assert browser.get(path).status_code == 404
    assert sign_in(timed_app.test_client(), "sam@a.test", PASSWORD).status_code == 401
    assert sign_in(timed_app.test_client(), "sam@a.test", NEW_PASSWORD).status_code == 302

    ask(timed_app.test_client(), "sky@a.test")
    late = link_path(outbox(db, "password_reset")[1], "reset")
    clock.at += timedelta(minutes=61)
    assert timed_app.test_client().get(late).status_code == 404


def test_asking_is_limited_per_address_and_per_client(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    db.rollback()
    one = timed_app.test_client()
    one.environ_base["REMOTE_ADDR"] = "192.0.2.1"
    for _ in range(3):
        assert ask(one, "sam@a.test").status_code == 200
    assert ask(one, "sam@a.test").status_code == 429
    other = timed_app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.2"
    assert ask(other, "sam@a.test").status_code == 429  # per address: nobody floods Sam's inbox
    assert len(outbox(db, "password_reset")) == 3
    for n in range(7):  # the first client asks about other addresses up to its own limit
        assert ask(one, f"someone{n}@a.test").status_code == 200
    assert ask(one, "sky@a.test").status_code == 429
    assert ask(other, "sky@a.test").status_code == 200
    clock.at += timedelta(hours=1, minutes=1)
    assert ask(one, "sam@a.test").status_code == 200
