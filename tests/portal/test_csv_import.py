"""CSV import: templates, a preview that lists every row's problems and writes nothing, then
an all-or-nothing import of families and of appointments."""

from __future__ import annotations

import io

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.csv_import import APPOINTMENT_COLUMNS, FAMILY_COLUMNS
from threads.models import Appointment, Contact, Family, Pet

FAMILIES = ",".join(FAMILY_COLUMNS) + "\n" + "\n".join(
    [
        "okafor,Okafor family,Ada Okafor,ada@example.com,yes,Pepper,dog,Beagle",
        "okafor,,Obi Okafor,obi@example.com,,,,",
        "kim,Kim family,Min Kim,min@example.com,,Rex,cat,",
    ]
) + "\n"
BROKEN = FAMILIES + "lee,Lee family,Lou Lee,not-an-address,,,,\nnoname,,,,,Fido,,\n"


def upload(client: FlaskClient, kind: str, text: str, action: str = "preview"):  # type: ignore[no-untyped-def]
    data = {"csrf_token": csrf_token(client, "/import"), "kind": kind, "action": action, "file": (io.BytesIO(text.encode()), f"{kind}.csv")}
    return client.post("/import", data=data, content_type="multipart/form-data")


def counts(db: Session) -> tuple[int, int, int, int]:
    found = tuple(db.scalar(select(func.count()).select_from(model)) or 0 for model in (Family, Contact, Pet, Appointment))
    db.rollback()
    return found  # type: ignore[return-value]


def test_templates_download_for_admins_only(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    admin, senior = app.test_client(), app.test_client()
    sign_in_as(app, admin, world.admin)
    sign_in_as(app, senior, world.senior)
    response = admin.get("/import/families.csv")
    assert response.mimetype == "text/csv" and response.get_data(as_text=True).startswith(",".join(FAMILY_COLUMNS))
    assert admin.get("/import/appointments.csv").get_data(as_text=True).startswith(",".join(APPOINTMENT_COLUMNS))
    assert senior.get("/import/families.csv").status_code == 403


def test_the_preview_lists_every_rows_problems_and_nothing_is_written(app: Flask, world: World, db: Session) -> None:
    before = counts(db)
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    preview = upload(admin, "families", BROKEN)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 400
    assert "<td>5</td><td><code>contact_email</code></td><td>&#39;not-an-address&#39; is not an email address</td>" in page
    assert "<td>6</td><td><code>family_name</code></td>" in page and "<td>6</td><td><code>contact_name</code></td>" in page
    assert "Import " not in page.split("Preview</h2>", 1)[1]  # no import button while rows have problems
    forced = upload(admin, "families", BROKEN, action="apply")
    assert forced.status_code == 400
    assert counts(db) == before


def test_families_then_appointments_are_previewed_then_imported(app: Flask, world: World, db: Session) -> None:
    before = counts(db)
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    preview = upload(admin, "families", FAMILIES)
    assert preview.status_code == 200 and "Would create 2 families" in preview.get_data(as_text=True)
    assert counts(db) == before
    assert upload(admin, "families", FAMILIES, action="apply").status_code == 302
    assert counts(db)[:3] == (before[0] + 2, before[1] + 3, before[2] + 2)
    assert [r["family"] for r in admin.get("/api/search?q=pepper").get_json()["results"]] == ["Okafor family"]

    appointments = ",".join(APPOINTMENT_COLUMNS) + "\n" + "\n".join(
        [
            "stay-1,okafor,bo@a.test;sky@a.test,boarding,2026-12-01 17:00,2026-12-03 10:00,",
            "walk-1,kim,bo@a.test,walk,2026-12-02 09:00,2026-12-02 10:00,scheduled",
        ]
    ) + "\n"
    bad = appointments + "walk-2,nobody,ghost@a.test,walk,2026-12-02 09:00,2026-12-02 08:00,\n"
    page = upload(admin, "appointments", bad).get_data(as_text=True)
    assert "<td>4</td><td><code>family_id</code></td>" in page and "<td>4</td><td><code>end</code></td><td>must be after start</td>" in page
    assert "is not the email of an active staff member" in page
    assert upload(admin, "appointments", appointments, action="apply").status_code == 302
    stay = db.scalar(select(Appointment).where(Appointment.external_id == "stay-1"))
    assert stay is not None and sorted(s.email for s in stay.staff) == ["bo@a.test", "sky@a.test"]
    assert stay.starts_at.isoformat().startswith("2026-12-01T22:00")  # 17:00 in New York
    db.rollback()
    assert counts(db)[3] == before[3] + 2
