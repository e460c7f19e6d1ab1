"""Sessions live on the server: sign-out, a new password, deactivation and admins end them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pawpost.cli import main
from tests.factories import PASSWORD
from tests.portal.auth_helpers import sign_in
from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.accounts import open_sessions
from threads.types import utcnow

COOKIE = "pawpost_session"


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def test_a_cookie_kept_from_before_sign_out_no_longer_signs_in(client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    assert sign_in(client, "sam@a.test", PASSWORD).status_code == 302
    kept = cookie_of(client)
    assert client.post("/signout", data={"csrf_token": csrf_token(client)}).status_code == 302
    client.set_cookie(COOKIE, kept)  # someone copied the cookie before "Sign out"
    response = client.get("/messages")
    assert response.status_code == 302 and response.location.startswith("/signin")


def run_cli(database_url: str, tmp_path: Path, *args: str, stdin: str | None = None) -> None:
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_a_new_password_or_deactivation_ends_every_session_for_good(
    app: Flask, world: World, db: Session, database_url: str, tmp_path: Path
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    for client in (laptop, phone):
        sign_in_as(app, client, world.senior)
        assert client.get("/messages").status_code == 200
    run_cli(database_url, tmp_path, "staff", "set-password", "sam@a.test", "--password-stdin", stdin="another long password\n")
    assert [c.get("/messages").status_code for c in (laptop, phone)] == [302, 302]
    assert open_sessions(db, world.senior.id, utcnow()) == []
    db.rollback()  # SQLite: a reading transaction would hold off the app's writes

    sign_in_as(app, laptop, world.senior)
    kept = cookie_of(laptop)
    run_cli(database_url, tmp_path, "staff", "deactivate", "sam@a.test")
    run_cli(database_url, tmp_path, "staff", "activate", "sam@a.test")
    laptop.set_cookie(COOKIE, kept)
    # Reactivating someone does not bring back the browsers they had before.
    assert laptop.get("/messages").status_code == 302


def test_an_admin_sees_a_persons_sessions_and_ends_them(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    laptop = app.test_client()
    phone = app.test_client()
    assert sign_in(laptop, "sam@a.test", PASSWORD, headers={"User-Agent": "Laptop Firefox/140"}).status_code == 302
    assert sign_in(phone, "sam@a.test", PASSWORD, headers={"User-Agent": "Phone Safari/18"}).status_code == 302
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    page = admin.get(f"/staff/{world.senior.id}").get_data(as_text=True)
    assert "Laptop Firefox/140" in page and "Phone Safari/18" in page
    db.rollback()
    (phone_session,) = [s.id for s in open_sessions(db, world.senior.id, utcnow()) if s.user_agent == "Phone Safari/18"]
    db.rollback()
    ended = admin.post(f"/staff/{world.senior.id}/sessions/{phone_session}/end", data={"csrf_token": csrf_token(admin)})
    assert ended.status_code == 302
    assert phone.get("/messages").status_code == 302
    assert laptop.get("/messages").status_code == 200
    page = admin.get(f"/staff/{world.senior.id}").get_data(as_text=True)
    assert "Phone Safari/18" not in page and "Laptop Firefox/140" in page
    admin.post(f"/staff/{world.senior.id}/sessions/end", data={"csrf_token": csrf_token(admin)})
    assert laptop.get("/messages").status_code == 302
    assert "Not signed in anywhere" in admin.get(f"/staff/{world.senior.id}").get_data(as_text=True)


def test_the_staff_page_counts_each_persons_open_sessions(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    admin, laptop, phone = app.test_client(), app.test_client(), app.test_client()
    sign_in_as(app, admin, world.admin)
    sign_in_as(app, laptop, world.senior)
    sign_in_as(app, phone, world.senior)
    assert phone.post("/signout", data={"csrf_token": csrf_token(phone)}).status_code == 302  # ended: not counted
    page = admin.get("/staff").get_data(as_text=True)

    def sessions_of(staff_id: int) -> str:
        return page.split(f'id="staff-{staff_id}"', 1)[1].split("</tr>", 1)[0].rsplit("<td>", 1)[1].split("</td>", 1)[0]

    # Sam: the laptop's; Sky: the one the world opened; Ada: this page's; Bo: none.
    assert [sessions_of(s.id) for s in (world.senior, world.senior2, world.admin, world.basic)] == ["1 session", "1 session", "1 session", "0 sessions"]
    assert f'id="staff-{world.foreign_admin.id}"' not in page
