"""The Families pages: seniors add and edit families, contacts, addresses and pets, clear a
bounce and deactivate a family; every refused field is shown next to itself."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.models import ContactAddress, Family, Pet, Thread
from threads.types import utcnow


def post(client: FlaskClient, path: str, **form: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_token(client, "/families"), **form})


def test_a_senior_adds_a_family_and_a_refused_field_is_shown_next_to_itself(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    refused = post(senior, "/families", name="Okafor family", contact_name="Ada Okafor", contact_email="ada at example")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="family-contact-email-error"' in page and "is not an email address" in page
    assert 'value="Okafor family"' in page  # what was typed stays
    created = post(senior, "/families", name="Okafor family", contact_name="Ada Okafor", contact_email="ada@example.com")
    assert created.status_code == 302
    family_id = db.scalar(select(Family.id).where(Family.name == "Okafor family"))
    thread_active = db.scalar(select(Thread.active).where(Thread.family_id == family_id))
    db.rollback()
    assert thread_active is True
    assert "Okafor family" in senior.get("/families").get_data(as_text=True)
    assert [r["family"] for r in senior.get("/api/search?q=okafor").get_json()["results"]] == ["Okafor family"]


def test_contacts_addresses_and_pets_are_edited_from_the_family_page(app: Flask, world: World, db: Session) -> None:
    family_id = world.scheduled.id
    emma, liam = world.scheduled.contacts
    address = db.scalar(select(ContactAddress).where(ContactAddress.contact_id == emma.id))
    assert address is not None
    address.bouncing, address.bounced_at, address.bounce_reason = True, utcnow() - timedelta(days=2), "550 5.1.1 user unknown"
    address_id = address.id
    db.commit()
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    page = admin.get(f"/families/{family_id}/edit").get_data(as_text=True)
    assert "bouncing" in page and "550 5.1.1 user unknown" in page and "Clear bounce" in page
    assert post(admin, f"/families/{family_id}/addresses/{address_id}/clear-bounce").status_code == 302
    assert db.scalar(select(ContactAddress.bouncing).where(ContactAddress.id == address_id)) is False
    db.rollback()

    last = post(admin, f"/families/{family_id}/addresses/{address_id}/remove")
    assert last.status_code == 400 and f'id="move-{address_id}-error"' in last.get_data(as_text=True)
    assert post(admin, f"/families/{family_id}/contacts/{emma.id}/addresses", email="emma.work@example.com").status_code == 302
    new_id = db.scalar(select(ContactAddress.id).where(ContactAddress.email == "emma.work@example.com"))
    db.rollback()
    assert post(admin, f"/families/{family_id}/addresses/{new_id}/move", to=str(liam.id)).status_code == 302
    owner = db.scalar(select(ContactAddress.contact_id).where(ContactAddress.id == new_id))
    db.rollback()
    assert owner == liam.id
    assert post(admin, f"/families/{family_id}/contacts/{liam.id}", name="Liam J. Johnson", primary="1").status_code == 302
    bad_pet = post(admin, f"/families/{family_id}/pets", name="", species="dog", breed="")
    assert bad_pet.status_code == 400 and 'id="new-pet-name-error"' in bad_pet.get_data(as_text=True)
    assert post(admin, f"/families/{family_id}/pets", name="Pepper", species="cat", breed="").status_code == 302
    pet_id = db.scalar(select(Pet.id).where(Pet.name == "Pepper"))
    db.rollback()
    assert post(admin, f"/families/{family_id}/pets/{pet_id}", name="Pepper", species="cat", breed="Siamese").status_code == 302
    profile = admin.get(f"/families/{family_id}").get_data(as_text=True)
    assert "Liam J. Johnson" in profile and "Siamese" in profile and "primary" in profile
    assert post(admin, f"/families/{family_id}/pets/{pet_id}/remove").status_code == 302
    assert "<strong>Pepper</strong>" not in admin.get(f"/families/{family_id}").get_data(as_text=True)


def test_deactivating_a_family_stops_its_reply_address_until_reactivated(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    post(senior, f"/families/{world.scheduled.id}/deactivate")
    assert db.scalar(select(Thread.active).where(Thread.id == world.thread.id)) is False
    db.rollback()
    assert "deactivated" in senior.get("/families").get_data(as_text=True)
    post(senior, f"/families/{world.scheduled.id}/activate")
    assert db.scalar(select(Thread.active).where(Thread.id == world.thread.id)) is True
    db.rollback()


def test_the_families_list_pages_by_name_without_skipping_namesakes(app: Flask, world: World, db: Session) -> None:
    from tests.factories import make_family

    business = db.merge(world.business)
    for n in range(105):
        make_family(db, business, name="Smith family" if n < 3 else f"Family {n:03d}", contacts=("Pat",))
    db.commit()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    seen: list[str] = []
    path: str | None = "/families"
    while path:
        page = senior.get(path).get_data(as_text=True)
        seen += [line.split('">', 1)[1].split("</a>", 1)[0] for line in page.split('<th scope="row"><a href="/families/')[1:]]
        more = page.split('href="/families?', 1)
        path = "/families?" + more[1].split('"', 1)[0].replace("&amp;", "&") if len(more) > 1 and "More families" in page else None
    assert len(seen) == 107 and seen.count("Smith family") == 3


def test_the_list_marks_each_bouncing_address_of_each_contact(app: Flask, world: World, db: Session) -> None:
    emma, liam = world.scheduled.contacts
    db.add(ContactAddress(contact_id=emma.id, email="emma.old@example.com", bouncing=True))
    db.add(ContactAddress(contact_id=emma.id, email="emma.older@example.com", bouncing=True))
    db.commit()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    page = senior.get("/families").get_data(as_text=True)
    row = page.split("Johnson family", 1)[1].split("</tr>", 1)[0]
    bad = ' <span class="state state-bad">bouncing</span>'
    assert f'<span class="email">Emma Johnson{bad}{bad}</span><span class="email">Liam Johnson</span>' in row
