"""The basic staff path (Today → profile) in the business's time zone, and `pawpost staff`."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pawpost.cli import main
from portal import create_app
from portal.server import background_server
from tests.factories import make_appointment, make_business, make_family, make_staff
from tests.portal.conftest import World, csrf_token, portal_settings_for, sign_in_as
from threads.models import Staff


def test_today_lists_my_appointments_and_the_profile_offers_message(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in_as(app, client, world.basic)
    today = client.get("/today").get_data(as_text=True)
    assert "Johnson family" in today and "Garcia family" not in today
    assert f'href="/families/{world.scheduled.id}"' in today
    assert 'aria-label="unread" hidden' not in today  # Emma's message is unread for Bo
    profile = client.get(f"/families/{world.scheduled.id}").get_data(as_text=True)
    assert "Emma Johnson" in profile and "Liam Johnson" in profile and "Bella" in profile
    assert profile.count(f'href="/families/{world.scheduled.id}/thread"') == 2  # one Message button per contact
    assert "Bo Basic" in profile  # today's appointment and who does it


def test_today_is_the_business_day_not_the_servers(database_url: str, tmp_path: Path, db: Session) -> None:
    """At 23:30 in Auckland (10:30 UTC) the 23:00 visit is today; the next morning's is not."""
    business = make_business(db, timezone="Pacific/Auckland")
    walker = make_staff(db, business, role="basic")
    tonight = make_family(db, business, name="Tonight family")
    tomorrow = make_family(db, business, name="Tomorrow family")
    make_appointment(db, tonight, [walker], start=datetime(2025, 3, 3, 10, 0, tzinfo=UTC), hours=1)
    make_appointment(db, tomorrow, [walker], start=datetime(2025, 3, 3, 20, 0, tzinfo=UTC), hours=1)
    db.commit()
    db.expunge_all()
    app = create_app(portal_settings_for(database_url, tmp_path), clock=lambda: datetime(2025, 3, 3, 10, 30, tzinfo=UTC))
    client = app.test_client()
    sign_in_as(app, client, walker)
    page = client.get("/today").get_data(as_text=True)
    assert "Tonight family" in page and "Tomorrow family" not in page
    assert "11:00 PM" in page
    assert client.get(f"/families/{tomorrow.id}").status_code == 403
    app.extensions["pawpost"].engine.dispose()


def _run(args: list[str], database_url: str, tmp_path: Path, stdin: str | None = None) -> Result:
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}
    return CliRunner().invoke(main, args, env=env, input=stdin, catch_exceptions=False)


def test_staff_add_set_password_and_deactivate(database_url: str, tmp_path: Path, db: Session) -> None:
    make_business(db)
    db.commit()
    added = _run(["staff", "add", "New.Person@Biz.test", "--name", "New Person", "--role", "senior", "--password-stdin"], database_url, tmp_path, "first password 1\n")
    assert added.exit_code == 0, added.output
    weak = _run(["staff", "set-password", "new.person@biz.test", "--password-stdin"], database_url, tmp_path, "short\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    assert _run(["staff", "set-password", "new.person@biz.test", "--password-stdin"], database_url, tmp_path, "second password 2\n").exit_code == 0

    app = create_app(portal_settings_for(database_url, tmp_path))
    client = app.test_client()

    def sign_in(password: str) -> int:
        token = csrf_token(client, "/signin")
        return client.post("/signin", data={"email": "new.person@biz.test", "password": password, "csrf_token": token}).status_code

    assert sign_in("first password 1") == 401
    assert sign_in("second password 2") == 302
    assert _run(["staff", "deactivate", "new.person@biz.test"], database_url, tmp_path).exit_code == 0
    assert client.get("/messages").status_code == 302
    listing = _run(["staff", "list", "--json"], database_url, tmp_path)
    assert '"active": false' in listing.output and '"role": "senior"' in listing.output
    assert db.scalar(select(Staff.email).where(Staff.name == "New Person")) == "new.person@biz.test"
    db.rollback()
    app.extensions["pawpost"].engine.dispose()


def test_staff_add_needs_a_business_when_there_are_several(database_url: str, tmp_path: Path, world: World) -> None:
    result = _run(["staff", "add", "x@y.test", "--name", "X", "--password-stdin"], database_url, tmp_path, "long enough pw\n")
    assert result.exit_code == 1 and "--business" in result.output


def test_background_server_answers_health_checks_on_an_ephemeral_port(database_url: str, tmp_path: Path) -> None:
    settings = portal_settings_for(database_url, tmp_path, PAWPOST_WEB_LISTEN="127.0.0.1:0")
    with background_server(settings) as (host, port):
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=10) as response:
            assert (response.status, response.read()) == (200, b"ok")
