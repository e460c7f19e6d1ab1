"""The directory's writes over the API, as an integrator syncing its own software meets them:
`updated_since` whichever door changed a row, true replace of a family, appointments created,
cancelled and deleted (and so who is scheduled), staff by their id, a required
Idempotency-Key, and two businesses that never see or touch each other's rows. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import MAIL_DOMAIN
from tests.portal.conftest import World, csrf_token, sign_in_as
from tests.portal.test_api import assert_problem, bearer, key_for, writing
from threads.bounces import clear_bouncing, mark_bouncing
from threads.csv_import import FAMILY_COLUMNS, import_csv
from threads.importing import import_directory
from threads.models import Appointment, Business, Contact, Family, Message, Staff, StaffSession, WebhookDelivery
from threads.parent_links import link_key, link_secrets, parent_access
from threads.posting import post_message
from threads.schedule import business_today, scheduled_staff
from threads.types import utcnow
from threads.webhooks import create_endpoint


def _family(*contacts: tuple[str, str], pets: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "name": "Nguyen family",
        "contacts": [{"id": ident, "name": ident.title(), "email": email} for ident, email in contacts],
        "pets": [{"name": name} for name in pets],
    }


def _listed(client: FlaskClient, secret: str, kind: str, since: str, limit: int = 200) -> list[dict[str, Any]]:
    """Every row of a list changed since `since`, page by page."""
    rows: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = client.get(f"/api/v1/{kind}", query_string={"updated_since": since, "limit": limit, **({"cursor": cursor} if cursor else {})}, headers=bearer(secret))
        assert page.status_code == 200, page.get_data(as_text=True)
        body = page.get_json()
        rows += body["data"]
        if body["next_cursor"] is None:
            return rows
        cursor = body["next_cursor"]


def test_a_write_without_an_idempotency_key_is_refused_before_it_acts(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:write", "directory:read")
    external_id = world.scheduled.external_id
    appointment = db.get(Appointment, world.appointment_id)
    assert appointment is not None and appointment.external_id
    appointment_id = appointment.external_id
    db.rollback()
    for method, path, body in (
        ("post", "/api/v1/directory", {"business": {"id": world.business.slug}}),
        ("put", f"/api/v1/families/{external_id}", _family(("c1", "x@x.test"))),
        ("delete", f"/api/v1/families/{external_id}", None),
        ("post", f"/api/v1/appointments/{appointment_id}/cancel", None),
        ("delete", f"/api/v1/appointments/{appointment_id}", None),
        ("put", "/api/v1/staff/w1", {"name": "Wes", "email": "wes@a.test", "role": "basic"}),
    ):
        answer = getattr(client, method)(path, json=body, headers=bearer(secret))
        problem = assert_problem(answer, 400, "idempotency-key-required")
        assert "Idempotency-Key" in problem["detail"]
    assert client.get(f"/api/v1/appointments/{appointment_id}", headers=bearer(secret)).get_json()["status"] == "scheduled"
    family = client.get(f"/api/v1/families/{external_id}", headers=bearer(secret)).get_json()
    assert family["active"] and [c["name"] for c in family["contacts"]] == ["Emma Johnson", "Liam Johnson"]
    assert client.get("/api/v1/staff/w1", headers=bearer(secret)).status_code == 404


def test_updated_since_lists_only_what_changed_whichever_door_changed_it(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read", "directory:write")
    business = db.get(Business, world.business.id)
    assert business is not None
    import_directory(db, {
        "business": {"id": business.slug, "name": business.name, "timezone": business.timezone},
        "staff": [{"id": "old-1", "name": "Olga Old", "email": "olga@a.test", "role": "basic"}],
        "families": [{"id": "old-fam", "name": "Old family", "contacts": [{"name": "Otto Old", "email": "otto@old.test"}]}],
    }, mail_domain=MAIL_DOMAIN)
    db.commit()
    since = utcnow()
    assert _listed(client, secret, "families", since.isoformat()) == []
    assert _listed(client, secret, "staff", since.isoformat()) == []
    assert _listed(client, secret, "appointments", since.isoformat()) == []

    # The API: a family and a staff member by their ids.
    assert client.put("/api/v1/families/api-fam", json=_family(("c1", "ann@api.test")), headers=writing(secret)).status_code == 200
    assert client.put("/api/v1/staff/api-1", json={"name": "Api Walker", "email": "api@a.test", "role": "basic"}, headers=writing(secret)).status_code == 200
    # `pawpost import`: a new family and an appointment for an existing one.
    import_directory(db, {
        "business": {"id": business.slug, "name": business.name, "timezone": business.timezone},
        "staff": [{"id": "api-1", "name": "Api Walker", "email": "api@a.test", "role": "basic"}],
        "families": [{"id": "imp-fam", "name": "Imported family", "contacts": [{"name": "Ivy Imp", "email": "ivy@imp.test"}]}],
        "appointments": [{"id": "imp-visit", "family": "imp-fam", "staff": ["api-1"], "start": "2026-12-03T09:00:00-05:00", "end": "2026-12-03T10:00:00-05:00"}],
    }, mail_domain=MAIL_DOMAIN)
    # The CSV import.
    csv_text = ",".join(FAMILY_COLUMNS) + "\ncsv-fam,Csv family,Cal Csv,cal@csv.test,yes,,,\n"
    import_csv(db, business, "families", csv_text, mail_domain=MAIL_DOMAIN, apply=True)
    db.commit()
    # The admin forms: a pet added to the Johnsons (a child row bumps its family), an
    # appointment cancelled, a role changed.
    sign_in_as(app, client, world.admin)
    token = csrf_token(client)
    assert client.post(f"/families/{world.scheduled.id}/pets", data={"csrf_token": token, "name": "Rex", "species": "", "breed": ""}).status_code == 302
    assert client.post(f"/schedule/appointments/{world.appointment_id}/cancel", data={"csrf_token": token}).status_code == 302
    assert client.post(f"/staff/{world.basic.id}/role", data={"csrf_token": token, "role": "senior"}).status_code == 302

    # The same document again changes nothing, so it stamps nothing.
    import_directory(db, {
        "business": {"id": business.slug, "name": business.name, "timezone": business.timezone},
        "staff": [{"id": "old-1", "name": "Olga Old", "email": "olga@a.test", "role": "basic"}],
        "families": [{"id": "old-fam", "name": "Old family", "contacts": [{"name": "Otto Old", "email": "otto@old.test"}]}],
    }, mail_domain=MAIL_DOMAIN)
    db.commit()

    families = _listed(client, secret, "families", since.isoformat(), limit=1)
    assert sorted(f["id"] for f in families) == sorted(["api-fam", "imp-fam", "csv-fam", world.scheduled.external_id])
    assert all(f["updated_at"] >= since.isoformat()[:26] for f in families)
    staff = _listed(client, secret, "staff", since.isoformat(), limit=1)
    assert sorted(s["name"] for s in staff) == ["Api Walker", "Bo Basic"]
    appointments = _listed(client, secret, "appointments", since.isoformat(), limit=1)
    assert sorted((a["family_id"], a["status"]) for a in appointments) == sorted([("imp-fam", "scheduled"), (world.scheduled.external_id, "cancelled")])
    # Ordered by (updated_at, id): the next sync from the newest stamp sees only what changes next.
    newest = max(f["updated_at"] for f in families)
    assert [f["id"] for f in _listed(client, secret, "families", newest)] == [max(families, key=lambda f: (f["updated_at"]))["id"]]
    # A cursor goes back with the updated_since it came with.
    first = client.get("/api/v1/families", query_string={"updated_since": since.isoformat(), "limit": 1}, headers=bearer(secret)).get_json()
    mixed = client.get("/api/v1/families", query_string={"cursor": first["next_cursor"]}, headers=bearer(secret))
    assert assert_problem(mixed, 422, "invalid-request")["errors"][0]["pointer"] == "cursor"
    naive = client.get("/api/v1/families", query_string={"updated_since": "2026-12-02T10:00:00"}, headers=bearer(secret))
    assert assert_problem(naive, 422, "invalid-request")["errors"][0]["pointer"] == "updated_since"


def test_a_row_changed_while_paging_comes_again_later_and_none_is_skipped(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read", "directory:write")
    since = utcnow().isoformat()
    for n in range(4):
        assert client.put(f"/api/v1/families/page-{n}", json=_family((f"c{n}", f"p{n}@page.test")), headers=writing(secret)).status_code == 200
    first = client.get("/api/v1/families", query_string={"updated_since": since, "limit": 2}, headers=bearer(secret)).get_json()
    assert [f["id"] for f in first["data"]] == ["page-0", "page-1"]
    changed = _family(("c0", "p0@page.test"))
    changed["name"] = "Renamed family"
    assert client.put("/api/v1/families/page-0", json=changed, headers=writing(secret)).status_code == 200
    rest = client.get("/api/v1/families", query_string={"updated_since": since, "limit": 10, "cursor": first["next_cursor"]}, headers=bearer(secret)).get_json()
    assert [f["id"] for f in rest["data"]] == ["page-2", "page-3", "page-0"] and rest["next_cursor"] is None


def test_put_family_is_a_true_replace_and_a_removed_contact_keeps_their_history(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read", "directory:write")
    entry = _family(("ann", "ann@ng.test"), ("bao", "bao@ng.test"), pets=("Mochi", "Pho"))
    entry["contacts"][0]["emails"] = ["ann@ng.test", "ann@work.test"]
    del entry["contacts"][0]["email"]
    made = client.put("/api/v1/families/ng-1", json=entry, headers=writing(secret)).get_json()
    assert [len(c["addresses"]) for c in made["contacts"]] == [2, 1] and [p["name"] for p in made["pets"]] == ["Mochi", "Pho"]
    family = db.scalar(select(Family).where(Family.external_id == "ng-1"))
    assert family is not None and family.thread is not None
    bao = next(c for c in family.contacts if c.external_id == "bao")
    post_message(db, family.thread, bao, "Pho is limping a little")
    now = utcnow()
    secret_of_bao = link_secrets(db, [bao.id], now)[bao.id]
    key = link_key(secret_of_bao, family.thread.reply_token)
    assert parent_access(db, bao.id, key, now, now) is not None
    bao_id = bao.id
    db.commit()

    replaced = _family(("ann", "ann@ng.test"), pets=("Mochi",))
    answer = client.put("/api/v1/families/ng-1", json=replaced, headers=writing(secret))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert [c["name"] for c in body["contacts"]] == ["Ann"] and body["contacts"][0]["primary"]
    assert [a["email"] for a in body["contacts"][0]["addresses"]] == ["ann@ng.test"]
    assert [p["name"] for p in body["pets"]] == ["Mochi"]
    assert client.get("/api/v1/families/ng-1", headers=bearer(secret)).get_json() == body

    db.expire_all()
    # Bao's link stops working, but what Bao wrote still says who wrote it.
    assert parent_access(db, bao_id, key, now, utcnow()) is None
    message = db.scalar(select(Message).where(Message.contact_id == bao_id))
    assert message is not None and message.author_name == "Bao"
    removed = db.get(Contact, bao_id)
    assert removed is not None and removed.removed_at is not None and removed.addresses == [] and removed.email_choice == "paused"
    db.rollback()
    # Bao can come back later under the same id: a new contact, the old history untouched.
    again = client.put("/api/v1/families/ng-1", json=_family(("ann", "ann@ng.test"), ("bao", "bao@ng.test")), headers=writing(secret)).get_json()
    assert [c["id"] for c in again["contacts"]] == ["ann", "bao"]


def test_the_admin_form_removes_a_contact_by_the_same_rule(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    family = db.get(Family, world.scheduled.id)
    assert family is not None and family.thread is not None
    liam = next(c for c in family.contacts if c.name == "Liam Johnson")
    now = utcnow()
    key = link_key(link_secrets(db, [liam.id], now)[liam.id], family.thread.reply_token)
    liam_id, emma_id = liam.id, next(c.id for c in family.contacts if c.name == "Emma Johnson")
    db.commit()
    sign_in_as(app, client, world.senior)
    token = csrf_token(client)
    assert client.post(f"/families/{world.scheduled.id}/contacts/{liam_id}/remove", data={"csrf_token": token}).status_code == 302
    db.expire_all()
    assert parent_access(db, liam_id, key, now, utcnow()) is None
    assert [c.name for c in db.get(Family, world.scheduled.id).contacts] == ["Emma Johnson"]  # type: ignore[union-attr]
    db.rollback()
    last = client.post(f"/families/{world.scheduled.id}/contacts/{emma_id}/remove", data={"csrf_token": token})
    assert last.status_code == 400 and "at least one contact" in last.get_data(as_text=True)


def test_archiving_a_family_and_putting_it_back(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read", "directory:write")
    other_business = key_for(db, world.foreign_family.business_id, "directory:read", "directory:write")
    external_id = world.scheduled.external_id
    assert_problem(client.delete(f"/api/v1/families/{external_id}", headers=writing(other_business)), 404, "not-found")
    archived = client.delete(f"/api/v1/families/{external_id}", headers=writing(secret))
    assert archived.status_code == 200 and archived.get_json()["active"] is False
    thread = db.get(Family, world.scheduled.id).thread  # type: ignore[union-attr]
    assert thread is not None and thread.active is False
    db.rollback()
    entry = _family(("emma", "emma.johnson@example.test"))
    back = client.put(f"/api/v1/families/{external_id}", json=entry, headers=writing(secret)).get_json()
    assert back["active"] is True
    assert_problem(client.delete("/api/v1/families/nobody", headers=writing(secret)), 404, "not-found")


def test_appointments_put_cancel_and_delete_change_who_is_scheduled(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read", "directory:write")
    endpoint_id = create_endpoint(db, world.business.id, url="https://crm.example.test/in", events=["appointment.changed"], development=False, secret_key="api-directory-tests-key", now=utcnow())[0].id
    db.commit()
    for ident, name in (("w1", "Wes Walker"), ("w2", "Val Walker")):
        assert client.put(f"/api/v1/staff/{ident}", json={"name": name, "email": f"{ident}@a.test", "role": "basic"}, headers=writing(secret)).status_code == 200
    assert client.put("/api/v1/families/visit-fam", json=_family(("c1", "c1@visit.test")), headers=writing(secret)).status_code == 200
    business = db.get(Business, world.business.id)
    assert business is not None
    start = utcnow() - timedelta(minutes=30)
    entry = {"family": "visit-fam", "staff": ["w1"], "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(), "service": "walk"}
    db.rollback()

    def scheduled() -> list[str]:
        db.expire_all()
        family = db.scalar(select(Family).where(Family.business_id == business.id, Family.external_id == "visit-fam"))
        assert family is not None
        names = [s.name for s in scheduled_staff(db, family, business_today(business, utcnow()))]
        db.rollback()
        return names

    made = client.put("/api/v1/appointments/v-1", json=entry, headers=writing(secret))
    assert made.status_code == 200, made.get_data(as_text=True)
    assert made.get_json()["staff"] == [{"id": "w1", "name": "Wes Walker"}] and made.get_json()["status"] == "scheduled"
    assert scheduled() == ["Wes Walker"]
    replaced = client.put("/api/v1/appointments/v-1", json={**entry, "staff": ["w2"]}, headers=writing(secret)).get_json()
    assert replaced["pawpost_id"] == made.get_json()["pawpost_id"] and replaced["service"] == "walk"
    assert scheduled() == ["Val Walker"]
    cancelled = client.post("/api/v1/appointments/v-1/cancel", headers=writing(secret))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert scheduled() == []
    assert client.put("/api/v1/appointments/v-1", json={**entry, "staff": ["w2"]}, headers=writing(secret)).get_json()["status"] == "scheduled"
    assert scheduled() == ["Val Walker"]
    assert client.delete("/api/v1/appointments/v-1", headers=writing(secret)).status_code == 204
    assert scheduled() == []
    # `appointment.changed` tells the integrator about the portal's changes, not its own.
    assert db.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)) == 0
    db.rollback()
    assert_problem(client.get("/api/v1/appointments/v-1", headers=bearer(secret)), 404, "not-found")
    assert_problem(client.delete("/api/v1/appointments/v-1", headers=writing(secret)), 404, "not-found")

    # The import's rules, each problem with its path; nothing is written.
    broken = {**entry, "family": "nobody", "staff": ["w1", "ghost"], "end": start.isoformat()}
    body = assert_problem(client.put("/api/v1/appointments/v-2", json=broken, headers=writing(secret)), 422, "invalid-appointment")
    assert {e["path"] for e in body["errors"]} == {"$.family", "$.staff[1]", "$.end"}
    body = assert_problem(client.put("/api/v1/appointments/v-2", json={"family": "visit-fam", "start": "soon"}, headers=writing(secret)), 422, "invalid-request")
    assert {e["pointer"] for e in body["errors"]} >= {"/staff", "/start", "/end"}
    assert db.scalar(select(func.count()).select_from(Appointment).where(Appointment.external_id == "v-2")) == 0


def test_another_businesss_rows_are_never_read_or_changed(client: FlaskClient, world: World, db: Session) -> None:
    mine = key_for(db, world.business.id, "directory:read", "directory:write")
    foreign = db.get(Appointment, world.foreign_appointment_id)
    assert foreign is not None and foreign.external_id
    foreign_id, foreign_status, foreign_family = foreign.external_id, foreign.status, world.foreign_family.external_id
    foreign_staff = db.get(Staff, world.foreign_senior.id)
    assert foreign_staff is not None and foreign_staff.external_id
    foreign_staff_id = foreign_staff.external_id
    db.rollback()

    assert_problem(client.get(f"/api/v1/appointments/{foreign_id}", headers=bearer(mine)), 404, "not-found")
    assert_problem(client.post(f"/api/v1/appointments/{foreign_id}/cancel", headers=writing(mine)), 404, "not-found")
    assert_problem(client.delete(f"/api/v1/appointments/{foreign_id}", headers=writing(mine)), 404, "not-found")
    assert_problem(client.get(f"/api/v1/staff/{foreign_staff_id}", headers=bearer(mine)), 404, "not-found")
    assert_problem(client.delete(f"/api/v1/staff/{foreign_staff_id}", headers=writing(mine)), 404, "not-found")
    # Naming the other business's family in an appointment is the same as naming nobody's.
    start = utcnow()
    entry = {"family": foreign_family, "staff": [foreign_staff_id], "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    body = assert_problem(client.put("/api/v1/appointments/new-1", json=entry, headers=writing(mine)), 422, "invalid-appointment")
    assert "is not a family id of this business" in body["errors"][0]["detail"]
    # The same ids are this business's own namespace: a PUT makes this business's row.
    assert client.put(f"/api/v1/families/{foreign_family}", json=_family(("c1", "c1@mine.test")), headers=writing(mine)).status_code == 200
    db.expire_all()
    theirs = db.get(Appointment, world.foreign_appointment_id)
    assert theirs is not None and theirs.status == foreign_status
    assert db.get(Family, world.foreign_family.id).name == "Bellamy family"  # type: ignore[union-attr]
    assert db.get(Staff, world.foreign_senior.id).active  # type: ignore[union-attr]
    db.rollback()
    mine_listed = client.get("/api/v1/families", query_string={"updated_since": start.isoformat()}, headers=bearer(mine)).get_json()["data"]
    assert [f["name"] for f in mine_listed] == ["Nguyen family"]


def test_staff_by_their_id(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read", "directory:write")
    made = client.put("/api/v1/staff/w9", json={"name": "Wes Walker", "email": "Wes@A.test", "role": "basic"}, headers=writing(secret))
    assert made.status_code == 200 and made.get_json()["email"] == "wes@a.test" and made.get_json()["active"]
    changed = client.put("/api/v1/staff/w9", json={"name": "Wes Walker", "email": "wes@a.test", "role": "senior"}, headers=writing(secret)).get_json()
    assert changed["role"] == "senior" and changed["updated_at"] >= made.get_json()["updated_at"]
    # Someone added in the portal (no id) is adopted by their email; an email of someone with
    # their own id is refused.
    person = db.get(Staff, world.admin.id)
    assert person is not None
    person.external_id = None
    db.commit()
    adopted = client.put("/api/v1/staff/ada-1", json={"name": "Ada Admin", "email": "ada@a.test", "role": "admin"}, headers=writing(secret)).get_json()
    assert adopted["id"] == "ada-1" and db.scalar(select(func.count()).select_from(Staff).where(Staff.email == "ada@a.test")) == 1
    db.rollback()
    taken = assert_problem(client.put("/api/v1/staff/w10", json={"name": "X", "email": "wes@a.test", "role": "basic"}, headers=writing(secret)), 422, "invalid-staff")
    assert taken["errors"][0]["path"] == "$.email" and "'w9'" in taken["errors"][0]["detail"]
    wrong = assert_problem(client.put("/api/v1/staff/w10", json={"name": "X", "email": "nope", "role": "owner"}, headers=writing(secret)), 422, "invalid-request")
    assert {e["pointer"] for e in wrong["errors"]} == {"/role"}
    # Deactivating signs them out everywhere, as the Staff page does.
    bo = db.get(Staff, world.basic.id)
    assert bo is not None and bo.external_id
    bo_id, bo_external = bo.id, bo.external_id
    db.rollback()
    sign_in_as(app, app.test_client(), world.basic)
    gone = client.delete(f"/api/v1/staff/{bo_external}", headers=writing(secret))
    assert gone.status_code == 200 and gone.get_json()["active"] is False
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(StaffSession).where(StaffSession.staff_id == bo_id, StaffSession.ended_at.is_(None))) == 0


def test_a_bounce_flag_set_or_cleared_counts_as_a_change_of_the_family(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read")
    emma = db.scalar(select(Contact).where(Contact.family_id == world.scheduled.id, Contact.name == "Emma Johnson"))
    assert emma is not None and emma.email
    emma_id, address = emma.id, emma.email
    db.rollback()
    since = utcnow().isoformat()
    mark_bouncing(db, emma_id, address, "550 5.1.1 no such user", utcnow())
    db.commit()
    [family] = _listed(client, secret, "families", since)
    assert family["id"] == world.scheduled.external_id and family["contacts"][0]["addresses"][0]["bouncing"] is True
    later = utcnow().isoformat()
    assert clear_bouncing(db, world.business.id, address) == 1
    db.commit()
    [family] = _listed(client, secret, "families", later)
    assert family["contacts"][0]["addresses"][0]["bouncing"] is False
