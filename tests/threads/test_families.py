"""The directory's one set of rules: a family form refuses what `pawpost import` refuses, with
the same words, and writes what the rest of Pawpost reads (thread, search, reply address)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_business, make_family
from threads import families
from threads.directory import search_families
from threads.errors import FieldProblems
from threads.importing import validate_directory
from threads.models import Thread


def test_forms_and_import_refuse_the_same_values_with_the_same_words(db: Session) -> None:
    business = make_business(db)
    file = {
        "business": {"id": "b", "name": "B", "timezone": "America/New_York"},
        "families": [{"id": "f", "name": " ", "contacts": [{"name": "Ann", "email": "not an address"}], "pets": [{"name": "x" * 101}]}],
    }
    problems = validate_directory(file)
    with pytest.raises(FieldProblems) as created:
        families.create_family(db, business.id, name=" ", contact_name="Ann", contact_email="not an address", mail_domain="reply.test")
    family = make_family(db, business, name="Johnson family", contacts=("Emma Johnson",))
    with pytest.raises(FieldProblems) as pet:
        families.add_pet(db, family, name="x" * 101, species="", breed="")
    assert f"families[0].name: {created.value.problems['name']}" in problems
    assert f"families[0].contacts[0].email: {created.value.problems['contact_email']}" in problems
    assert f"families[0].pets[0].name: {pet.value.problems['name']}" in problems


def test_a_family_made_by_a_form_has_a_thread_a_primary_contact_and_is_found_by_search(db: Session) -> None:
    business = make_business(db)
    family = families.create_family(db, business.id, name="Okafor family", contact_name="Ada Okafor", contact_email="ADA@Example.com", mail_domain="reply.test")
    families.add_pet(db, family, name="Pepper", species="dog", breed="")
    second = families.add_contact(db, family, name="Obi Okafor", email="obi@example.com", primary=True)
    db.commit()
    assert family.thread is not None and family.thread.active
    assert [c.is_primary for c in family.contacts if c.id == second.id] == [True]
    assert sum(c.is_primary for c in family.contacts) == 1
    assert family.contacts[0].email in ("ada@example.com", "obi@example.com")
    assert [m.family_id for m in search_families(db, business.id, "pepp")] == [family.id]
    with pytest.raises(FieldProblems, match="already an address of this family"):
        families.add_address(db, second, "Ada@example.com")


def test_addresses_move_keep_one_per_contact_and_deactivation_stops_the_thread(db: Session) -> None:
    business = make_business(db)
    family = make_family(db, business, name="Johnson family", contacts=("Emma Johnson", "Liam Johnson"))
    emma, liam = family.contacts
    extra = families.add_address(db, emma, "emma.work@example.com")
    families.move_address(db, extra, liam)
    db.flush()
    db.refresh(emma)
    db.refresh(liam)
    assert sorted(a.email for a in liam.addresses) == sorted([liam.addresses[0].email, "emma.work@example.com"])
    with pytest.raises(FieldProblems, match="at least one address"):
        families.remove_address(db, emma.addresses[0])
    families.set_family_active(db, family, False, "reply.test")
    db.commit()
    thread = db.query(Thread).filter_by(family_id=family.id).one()
    assert not thread.active
