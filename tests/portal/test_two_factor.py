"""Two-factor sign-in: turning TOTP on, signing in with a code or a recovery code, and the
business setting that makes it required for admins."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import PASSWORD
from tests.portal.auth_helpers import sign_in
from tests.portal.conftest import Clock, World, csrf_token, sign_in_as
from threads.models import Business, Staff


def turn_on(app: Flask, client: FlaskClient, clock: Clock) -> tuple[pyotp.TOTP, list[str]]:
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert secret and 'src="data:image/svg+xml;base64,' in page
    totp = pyotp.TOTP(secret.group(1))
    token = csrf_token(client, "/account/two-factor")
    assert client.post("/account/two-factor/enable", data={"csrf_token": token, "code": "000000"}).status_code == 400
    done = client.post("/account/two-factor/enable", data={"csrf_token": token, "code": totp.at(clock.at)})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes


def code_step(client: FlaskClient, code: str) -> int:
    return client.post("/signin/code", data={"csrf_token": csrf_token(client, "/signin/code"), "code": code}).status_code


def test_a_code_or_a_recovery_code_completes_the_sign_in_each_once(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    db.rollback()
    owner = timed_app.test_client()
    sign_in_as(timed_app, owner, world.senior)
    totp, codes = turn_on(timed_app, owner, clock)

    browser = timed_app.test_client()
    first = sign_in(browser, "sam@a.test", PASSWORD)
    assert first.status_code == 302 and first.location == "/signin/code"
    assert browser.get("/messages").status_code == 302  # the password alone signs nobody in
    assert code_step(browser, "123456") == 401
    clock.at += timedelta(seconds=30)
    code = totp.at(clock.at)
    assert code_step(browser, code) == 302
    assert browser.get("/messages").status_code == 200

    again = timed_app.test_client()
    sign_in(again, "sam@a.test", PASSWORD)
    assert code_step(again, code) == 401  # a code works once
    assert code_step(again, codes[0].upper().replace("-", " ")) == 302  # typed loosely
    assert again.get("/messages").status_code == 200
    third = timed_app.test_client()
    sign_in(third, "sam@a.test", PASSWORD)
    assert code_step(third, codes[0]) == 401  # a recovery code works once
    assert code_step(third, codes[1]) == 302


def test_the_code_step_expires_and_is_rate_limited(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    db.rollback()
    owner = timed_app.test_client()
    sign_in_as(timed_app, owner, world.senior)
    totp, _codes = turn_on(timed_app, owner, clock)
    slow = timed_app.test_client()
    sign_in(slow, "sam@a.test", PASSWORD)
    clock.at += timedelta(minutes=6)
    assert code_step(slow, totp.at(clock.at)) == 302
    assert slow.get("/messages").status_code == 302  # back to the sign-in page, not signed in

    guesser = timed_app.test_client()
    sign_in(guesser, "sam@a.test", PASSWORD)
    for guess in range(5):
        assert code_step(guesser, f"{guess:06d}") == 401
    clock.at += timedelta(seconds=30)
    assert code_step(guesser, totp.at(clock.at)) == 429


def test_a_business_can_require_two_factor_sign_in_for_admins(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    db.rollback()
    admin = timed_app.test_client()
    sign_in_as(timed_app, admin, world.admin)
    token = csrf_token(admin, "/settings/security")
    admin.post("/settings/security", data={"csrf_token": token, "require_admin_two_factor": "1"})
    assert "for yourself first" in admin.get("/settings/security").get_data(as_text=True)
    assert db.scalar(select(Business.require_admin_two_factor).where(Business.id == world.business.id)) is False
    db.rollback()
    turn_on(timed_app, admin, clock)
    admin.post("/settings/security", data={"csrf_token": csrf_token(admin, "/settings/security"), "require_admin_two_factor": "1"})
    assert db.scalar(select(Business.require_admin_two_factor).where(Business.id == world.business.id)) is True
    db.rollback()

    other_admin = db.get(Staff, world.senior2.id)
    assert other_admin is not None
    other_admin.role = "admin"
    db.commit()
    colleague = timed_app.test_client()
    sign_in_as(timed_app, colleague, world.senior2)
    for path in ("/messages", "/staff", f"/threads/{world.thread.id}"):
        response = colleague.get(path)
        assert response.status_code == 302 and response.location == "/account/two-factor", path
    assert "requires two-factor sign-in for admins" in colleague.get("/account/two-factor").get_data(as_text=True)
    senior = timed_app.test_client()
    sign_in_as(timed_app, senior, world.senior)
    assert senior.get("/messages").status_code == 200  # only admins
    turn_on(timed_app, colleague, clock)
    assert colleague.get("/staff").status_code == 200
