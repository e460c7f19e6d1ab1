"""Issue 11, point 10: a staff member's held email is released as them (offered first and
pre-selected), and a staff address never becomes a contact's alias (core function, UI, CLI)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pawpost.cli import main
from tests.portal.conftest import World, csrf_token, held_email, sign_in_as
from threads.directory import add_contact_address
from threads.errors import StaffAddress
from threads.models import Business, Contact, ContactAddress, InboundEmail, Message, Thread


@dataclass
class ReleaseForm:
    """What a reviewer sees in one held email's release form."""

    options: list[tuple[str, str, bool]] = field(default_factory=list)  # (value, label, selected)
    remember: bool = False


class _FormReader(HTMLParser):
    def __init__(self, article_id: str) -> None:
        super().__init__()
        self.article_id, self.inside, self.depth, self.option = article_id, False, 0, None
        self.form = ReleaseForm()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "article" and values.get("id") == self.article_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "article":
            self.depth += 1
        if tag == "option":
            self.option = [values.get("value") or "", "", "selected" in values]
        if tag == "input" and values.get("name") == "add_alias":
            self.form.remember = True

    def handle_data(self, data: str) -> None:
        if self.option is not None:
            self.option[1] += data

    def handle_endtag(self, tag: str) -> None:
        if self.inside and tag == "option" and self.option is not None:
            value, label, selected = self.option
            self.form.options.append((value, label.strip(), selected))
            self.option = None
        if self.inside and tag == "article":
            self.depth -= 1
            self.inside = self.depth > 0


def release_form(page: str, email_id: int) -> ReleaseForm:
    reader = _FormReader(f"held-{email_id}")
    reader.feed(page)
    return reader.form


def hold_from_staff(db: Session, world: World) -> int:
    """Bo (basic staff) wrote into the Garcia thread, where he is not scheduled: held."""
    business = db.get(Business, world.business.id)
    thread = db.get(Thread, world.other_thread.id)
    email = held_email(db, business, thread, world.basic.email, "Luna's leash is in the car")
    email.reason = f"{world.basic.email} is staff not scheduled with this family today"
    email_id = email.id
    db.commit()  # and no more reads: on SQLite the next one would hold the write lock the app needs
    return email_id


def test_a_staff_members_held_email_is_offered_as_them_and_posts_under_their_name(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    held_id = hold_from_staff(db, world)
    sign_in_as(app, client, world.senior)
    page = client.get("/quarantine").get_data(as_text=True)

    form = release_form(page, held_id)
    sofia = world.other.contacts[0]
    assert form.options[0] == (f"staff:{world.basic.id}", "Bo Basic (staff, the sender)", True)
    assert [value for value, _, selected in form.options if selected] == [f"staff:{world.basic.id}"]
    assert (f"contact:{sofia.id}", "Sofia Garcia", False) in form.options
    assert not form.remember  # "remember this address" is never offered for a staff address
    # A stranger's held email still offers the family's contacts and the alias.
    stranger = release_form(page, world.held.id)
    assert [value.split(":")[0] for value, _, _ in stranger.options] == ["contact", "contact"] and stranger.remember

    response = client.post(
        f"/quarantine/{held_id}/release", data={"csrf_token": csrf_token(client), "author": f"staff:{world.basic.id}"}
    )

    assert response.status_code == 302
    thread_page = client.get(f"/threads/{world.other_thread.id}").get_data(as_text=True)
    assert "leash is in the car" in thread_page
    db.rollback()
    [message] = db.scalars(select(Message).where(Message.thread_id == world.other_thread.id, Message.body.like("%leash%")))
    assert (message.author_type, message.staff_id, message.contact_id) == ("staff", world.basic.id, None)
    assert db.get(InboundEmail, held_id).outcome == "released"
    assert db.scalar(select(ContactAddress).where(ContactAddress.email == world.basic.email)) is None


def test_a_staff_address_is_never_remembered_as_a_contacts_alias(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    held_id = hold_from_staff(db, world)
    sofia = world.other.contacts[0]
    sign_in_as(app, client, world.senior)

    # A hand-made form asking for the alias anyway: refused, nothing posted.
    response = client.post(
        f"/quarantine/{held_id}/release",
        data={"csrf_token": csrf_token(client), "author": f"contact:{sofia.id}", "add_alias": "1"},
        follow_redirects=True,
    )

    assert "Not released" in response.get_data(as_text=True) and "staff member" in response.get_data(as_text=True)
    db.rollback()
    assert db.get(InboundEmail, held_id).outcome == "quarantined"
    assert db.scalar(select(ContactAddress).where(ContactAddress.email == world.basic.email)) is None
    assert db.scalar(select(Message).where(Message.body.like("%leash%"))) is None


def test_a_strangers_email_cannot_be_released_as_a_staff_member(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    sign_in_as(app, client, world.senior)
    response = client.post(
        f"/quarantine/{world.held.id}/release",
        data={"csrf_token": csrf_token(client), "author": f"staff:{world.senior.id}"},
        follow_redirects=True,
    )
    assert "Not released" in response.get_data(as_text=True)
    db.rollback()
    assert db.get(InboundEmail, world.held.id).outcome == "quarantined"


def test_the_core_alias_function_refuses_a_staff_address(world: World, db: Session) -> None:
    emma = db.get(Contact, world.scheduled.contacts[0].id)
    with pytest.raises(StaffAddress):
        add_contact_address(db, emma, world.basic.email.upper())
    db.rollback()
    # Another business's staff address is just an address here (a staff member elsewhere can be a parent).
    assert add_contact_address(db, emma, world.foreign_senior.email).email == world.foreign_senior.email


def test_the_cli_releases_a_staff_members_email_as_them(world: World, db: Session, database_url: str, tmp_path: Path) -> None:
    held_id = hold_from_staff(db, world)
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_QUEUE_URL": "memory://"}
    shown = CliRunner().invoke(main, ["quarantine", "show", str(held_id), "--json"], env=env)
    assert json.loads(shown.stdout)["staff_sender"] == {"id": world.basic.id, "name": "Bo Basic"}
    refused = CliRunner().invoke(
        main, ["quarantine", "release", str(held_id), "--contact", str(world.other.contacts[0].id), "--add-alias"], env=env
    )
    assert refused.exit_code == 1 and "staff member" in refused.output

    result = CliRunner().invoke(main, ["quarantine", "release", str(held_id), "--as-staff", "--json"], env=env)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["author"] == {"kind": "staff", "id": world.basic.id, "name": "Bo Basic"}
    stranger = CliRunner().invoke(main, ["quarantine", "release", str(world.held.id), "--as-staff"], env=env)
    assert stranger.exit_code == 1 and "not sent by a staff member" in stranger.output
    db.rollback()
    message = db.scalar(select(Message).where(Message.body.like("%leash%")))
    assert message is not None and message.staff_id == world.basic.id
