"""Saved replies: kept by seniors and admins, offered to everyone filled for the family."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.models import AuditEntry, SavedReply
from threads.saved_replies import fill

TEXT = "Hi {parent_first_name}, {pet_names} can't come tomorrow: {business} is closed for the storm. {staff_first_name} {unknown} {0}"


def test_placeholders_are_replaced_once_and_literally() -> None:
    values = {"{parent_first_name}": "{pet_names}", "{pet_names}": "Bella"}
    assert fill("{parent_first_name} & {pet_names} {x} {", values) == "{pet_names} & Bella {x} {"


def test_seniors_keep_replies_and_the_composer_gets_them_filled(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    sign_in_as(app, client, world.senior)
    created = client.post("/saved-replies", data={"csrf_token": csrf_token(client), "name": "Storm closure", "body": TEXT})
    assert created.status_code == 302
    again = client.post("/saved-replies", data={"csrf_token": csrf_token(client), "name": "Storm  closure", "body": "x"})
    assert again.status_code == 400 and "Another saved reply has this name" in again.get_data(as_text=True)
    assert client.post("/saved-replies", data={"csrf_token": csrf_token(client), "name": "", "body": ""}).status_code == 400
    page = client.get("/saved-replies").get_data(as_text=True)
    assert "Storm closure" in page and "{parent_first_name}" in page

    basic = app.test_client()
    sign_in_as(app, basic, world.basic)
    assert basic.get("/saved-replies").status_code == 403
    replies = basic.get(f"/families/{world.scheduled.id}/saved-replies").get_json()["replies"]
    assert replies == [{
        "name": "Storm closure",
        "text": "Hi Emma, Bella can't come tomorrow: "
        f"{world.business.name} is closed for the storm. Bo {{unknown}} {{0}}",
    }]
    assert basic.get(f"/families/{world.other.id}/saved-replies").status_code == 403

    reply_id = db.scalar(select(SavedReply.id).where(SavedReply.name == "Storm closure"))
    db.rollback()
    client.post(f"/saved-replies/{reply_id}", data={"csrf_token": csrf_token(client), "name": "Closed", "body": "Closed, {pet_names}!"})
    garcia = client.get(f"/families/{world.other.id}/saved-replies").get_json()["replies"]
    assert garcia == [{"name": "Closed", "text": "Closed, Luna!"}]
    client.post(f"/saved-replies/{reply_id}/delete", data={"csrf_token": csrf_token(client)})
    assert client.get(f"/families/{world.other.id}/saved-replies").get_json()["replies"] == []
    actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.action.like("saved_reply.%")).order_by(AuditEntry.id)))
    assert actions == ["saved_reply.created", "saved_reply.changed", "saved_reply.deleted"]
