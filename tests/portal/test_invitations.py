"""Invitations: an admin (or the shell) invites; the email goes through the outbox; the link
works once, for 7 days, and signs the person in after they choose a password."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pawpost.cli import main
from tests.portal.auth_helpers import NEW_PASSWORD, link_path, outbox, sign_in, text_of
from tests.portal.conftest import Clock, World, csrf_token, sign_in_as
from threads.accounts import open_sessions
from threads.models import Staff
from threads.types import utcnow

def invite(admin: FlaskClient, **form: str) -> int:
    return admin.post("/staff/invite", data={"csrf_token": csrf_token(admin, "/staff"), **form}).status_code


def test_an_invited_person_sets_a_password_once_and_is_signed_in(timed_app: Flask, world: World, db: Session) -> None:
    db.rollback()
    admin = timed_app.test_client()
    sign_in_as(timed_app, admin, world.admin)
    assert invite(admin, name="Nia New", email="Nia@A.test", role="basic") == 302
    (row,) = outbox(db, "invite")
    assert row.recipient_email == "nia@a.test" and row.state == "queued" and row.thread_id is None
    assert "Ada Admin invited you" in text_of(row) and "Happy Tails" in text_of(row)
    assert "invited" in admin.get("/staff").get_data(as_text=True)

    newcomer = timed_app.test_client()
    path = link_path(row)
    page = newcomer.get(path).get_data(as_text=True)
    assert ">Password<" in page and ">Confirm password<" in page and ">Set password<" in page
    token = csrf_token(newcomer, path)
    mismatch = newcomer.post(path, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": "something else"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.get_data(as_text=True)
    short = newcomer.post(path, data={"csrf_token": token, "password": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least 10 characters" in short.get_data(as_text=True)
    done = newcomer.post(path, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.location == "/today"
    assert "Nia New" in newcomer.get("/today").get_data(as_text=True)

    stranger = timed_app.test_client()
    assert stranger.get(path).status_code == 404  # single use
    assert sign_in(stranger, "nia@a.test", NEW_PASSWORD).status_code == 302


def test_an_invitation_link_expires_after_seven_days_and_a_resend_replaces_it(
    timed_app: Flask, world: World, db: Session, clock: Clock
) -> None:
    db.rollback()
    admin = timed_app.test_client()
    sign_in_as(timed_app, admin, world.admin)
    assert invite(admin, name="Nia New", email="nia@a.test", role="senior") == 302
    first = link_path(outbox(db, "invite")[0])
    client = timed_app.test_client()
    clock.at += timedelta(days=6, hours=23)
    assert client.get(first).status_code == 200
    clock.at += timedelta(hours=2)
    expired = client.get(first)
    assert expired.status_code == 404 and "expired or was already used" in expired.get_data(as_text=True)

    nia_id = db.scalar(select(Staff.id).where(Staff.email == "nia@a.test"))
    db.rollback()
    sign_in_as(timed_app, admin, world.admin)
    assert admin.post(f"/staff/{nia_id}/resend", data={"csrf_token": csrf_token(admin, "/staff")}).status_code == 302
    second = link_path(outbox(db, "invite")[1])
    assert second != first and client.get(second).status_code == 200
    assert client.get(first).status_code == 404


def test_the_invite_form_shows_each_problem_next_to_its_field_and_creates_nothing(
    app: Flask, world: World, db: Session
) -> None:
    db.rollback()
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    response = admin.post(
        "/staff/invite", data={"csrf_token": csrf_token(admin, "/staff"), "name": " ", "email": "not-an-address", "role": "boss"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    for field in ("name", "email", "role"):
        assert f'id="invite-{field}-error"' in page and f'aria-describedby="invite-{field}-error"' in page
    taken = admin.post("/staff/invite", data={"csrf_token": csrf_token(admin, "/staff"), "name": "Sam Again", "email": "SAM@a.test", "role": "basic"})
    assert taken.status_code == 400 and "already on the team" in taken.get_data(as_text=True)
    assert outbox(db, "invite") == []


def test_admins_change_roles_deactivate_and_reactivate_but_never_themselves(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    admin, basic = app.test_client(), app.test_client()
    sign_in_as(app, admin, world.admin)
    sign_in_as(app, basic, world.basic)
    token = csrf_token(admin, "/staff")
    assert basic.get("/messages").status_code == 403
    admin.post(f"/staff/{world.basic.id}/role", data={"csrf_token": token, "role": "senior"})
    assert basic.get("/messages").status_code == 200  # the new role holds at once
    admin.post(f"/staff/{world.basic.id}/deactivate", data={"csrf_token": token})
    assert basic.get("/today").status_code == 302
    assert open_sessions(db, world.basic.id, utcnow()) == []
    db.rollback()
    admin.post(f"/staff/{world.basic.id}/activate", data={"csrf_token": token})
    assert "can sign in again" in admin.get(f"/staff/{world.basic.id}").get_data(as_text=True)
    admin.post(f"/staff/{world.admin.id}/deactivate", data={"csrf_token": token})
    admin.post(f"/staff/{world.admin.id}/role", data={"csrf_token": token, "role": "basic"})
    me = db.execute(select(Staff.active, Staff.role).where(Staff.id == world.admin.id)).one()
    db.rollback()
    assert tuple(me) == (True, "admin")
    assert admin.get("/staff").status_code == 200


def test_staff_invite_from_the_shell_prints_the_link_and_queues_the_email(
    app: Flask, world: World, db: Session, database_url: str, tmp_path: Path
) -> None:
    db.rollback()
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_QUEUE_URL": "memory://", "PAWPOST_PUBLIC_URL": "https://portal.test"}
    args = ["staff", "invite", "nia@a.test", "--name", "Nia New", "--role", "senior", "--business", world.business.slug, "--json"]
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"email", "invite_url", "expires_at"} and data["email"] == "nia@a.test"
    assert datetime.fromisoformat(data["expires_at"]) - utcnow() > timedelta(days=6, hours=23)
    (row,) = outbox(db, "invite")
    assert data["invite_url"] in text_of(row)
    client = app.test_client()
    path = data["invite_url"].removeprefix("https://portal.test")
    done = client.post(path, data={"csrf_token": csrf_token(client, path), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.location == "/messages"
    again = CliRunner().invoke(main, args, env=env)
    assert again.exit_code == 1 and "already on the team" in again.output
