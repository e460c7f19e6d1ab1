"""Signing in and out: the form, the rate limit, inactive staff, CSRF and the cookie's flags."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import create_app
from tests.factories import PASSWORD
from tests.portal.conftest import World, csrf_token, portal_settings_for, sign_in_as
from threads.models import Message, SignInFailure, Staff
from threads.passwords import hash_password


def sign_in(client: FlaskClient, email: str, password: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": csrf_token(client, "/signin"), **extra})


def test_sign_in_lands_each_role_on_its_home_and_sign_out_ends_it(client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    response = sign_in(client, "SAM@a.test ", PASSWORD)
    assert response.status_code == 302 and response.location == "/messages"
    assert client.get("/messages").status_code == 200
    client.post("/signout", data={"csrf_token": csrf_token(client)})
    assert client.get("/messages").status_code == 302
    assert sign_in(client, "bo@a.test", PASSWORD).location == "/today"


def test_sign_in_returns_to_the_page_asked_for_but_never_elsewhere(client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    assert client.get(f"/threads/{world.thread.id}").location == f"/signin?next=/threads/{world.thread.id}"
    assert sign_in(client, "sam@a.test", PASSWORD, next=f"/threads/{world.thread.id}").location == f"/threads/{world.thread.id}"
    client.post("/signout", data={"csrf_token": csrf_token(client)})
    assert sign_in(client, "sam@a.test", PASSWORD, next="//evil.test/x").location == "/messages"


def test_wrong_password_and_unknown_email_get_the_same_answer(client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    wrong = sign_in(client, "sam@a.test", "not the password")
    unknown = sign_in(client, "nobody@a.test", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an active account" in wrong.get_data(as_text=True)
    assert client.get("/messages").status_code == 302


def test_inactive_staff_are_refused_and_lose_their_session(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.senior)
    assert client.get("/messages").status_code == 200
    db.get(Staff, world.senior.id).active = False
    db.commit()
    assert client.get("/messages").status_code == 302
    assert sign_in(client, "sam@a.test", PASSWORD).status_code == 401


def test_a_new_password_ends_existing_sessions(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.senior)
    assert client.get("/messages").status_code == 200
    db.get(Staff, world.senior.id).password_hash = hash_password("a brand new password")
    db.commit()
    assert client.get("/messages").status_code == 302


def test_five_failures_lock_the_address_even_with_the_right_password(client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    for _ in range(5):
        assert sign_in(client, "sam@a.test", "guess guess guess").status_code == 401
    locked = sign_in(client, "sam@a.test", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert client.get("/messages").status_code == 302
    # Another account is not locked by someone guessing at this one.
    assert sign_in(client, "sky@a.test", PASSWORD).status_code == 302
    assert db.scalar(select(func.count()).select_from(SignInFailure).where(SignInFailure.email == "sam@a.test")) == 5


def test_the_lock_holds_across_app_instances(database_url: str, tmp_path: Path, world: World, db: Session) -> None:
    """Two workers share the failures table, so guessing cannot be spread over processes."""
    db.rollback()
    apps = [create_app(portal_settings_for(database_url, tmp_path)) for _ in range(2)]
    clients = [a.test_client() for a in apps]
    for attempt in range(5):
        assert sign_in(clients[attempt % 2], "sam@a.test", "guess guess guess").status_code == 401
    assert sign_in(clients[1], "sam@a.test", PASSWORD).status_code == 429
    for a in apps:
        a.extensions["pawpost"].engine.dispose()


def test_state_changing_requests_without_a_valid_csrf_token_are_refused(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    db.rollback()
    sign_in_as(app, client, world.senior)
    before = db.scalar(select(func.count()).select_from(Message))
    db.rollback()
    missing = client.post(f"/threads/{world.thread.id}/messages", data={"body": "forged"})
    other = app.test_client()
    sign_in_as(app, other, world.senior2)
    foreign_token = client.post(
        f"/threads/{world.thread.id}/messages", data={"body": "forged", "csrf_token": csrf_token(other)}
    )
    signout = client.post("/signout")
    assert (missing.status_code, foreign_token.status_code, signout.status_code) == (400, 400, 400)
    assert db.scalar(select(func.count()).select_from(Message)) == before
    db.rollback()  # SQLite: an open transaction would hold the write lock the app needs
    assert client.get("/messages").status_code == 200  # the forged sign-out did nothing
    assert sign_in_form_without_token(client) == 400


def sign_in_form_without_token(client: FlaskClient) -> int:
    return client.post("/signin", data={"email": "sam@a.test", "password": PASSWORD}).status_code


def test_session_cookie_flags(database_url: str, tmp_path: Path, world: World, db: Session) -> None:
    db.rollback()
    for public_url, secure in (("http://127.0.0.1:5000", False), ("https://portal.example", True)):
        app = create_app(portal_settings_for(database_url, tmp_path, PAWPOST_PUBLIC_URL=public_url))
        client = app.test_client()
        response = sign_in(client, "sam@a.test", PASSWORD)
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        app.extensions["pawpost"].engine.dispose()


def test_pages_carry_a_strict_policy_and_no_inline_script_or_style(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    sign_in_as(app, client, world.senior)
    for path in ("/messages", f"/threads/{world.thread.id}", "/today", f"/families/{world.scheduled.id}", "/quarantine", "/signin"):
        response = client.get(path, follow_redirects=True)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = response.get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and "<style" not in html
        assert html.count("<script") == html.count('<script src="/static/')


def test_healthz_answers_ok_without_signing_in(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok")
