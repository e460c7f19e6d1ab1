"""`import_directory`: everything validated first, path-level errors, upserts by external id."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threads.accounts import live_session, start_staff_session
from threads.demo import demo_directory
from threads.errors import DirectoryError
from threads.importing import import_directory, validate_directory
from threads.models import Appointment, Contact, Family, Staff, Thread
from threads.passwords import verify_password
from threads.types import utcnow


def directory() -> dict[str, Any]:
    return demo_directory(date(2026, 11, 24), "test-secret")


def counts(db: Session) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(model)) or 0 for model in (Staff, Family, Contact, Appointment, Thread)
    )


def test_import_creates_everything_with_threads(db: Session) -> None:
    report = import_directory(db, directory(), mail_domain="reply.test")
    db.commit()
    assert counts(db) == (4, 12, 24, 7, 12)
    assert report.created["families"] == 12
    admin = db.scalar(select(Staff).where(Staff.email == "morgan@happytails.example"))
    assert admin is not None and admin.role == "admin"
    assert verify_password(admin.password_hash, directory()["staff"][0]["password"])


def test_import_twice_updates_instead_of_duplicating(db: Session) -> None:
    import_directory(db, directory(), mail_domain="reply.test")
    db.commit()
    tokens = set(db.scalars(select(Thread.reply_token)))
    changed = directory()
    changed["families"][0]["name"] = "Johnson-Reyes family"
    changed["staff"][2]["email"] = "JORDAN.LEE@happytails.example"
    report = import_directory(db, changed, mail_domain="reply.test")
    db.commit()
    assert counts(db) == (4, 12, 24, 7, 12)
    assert set(db.scalars(select(Thread.reply_token))) == tokens
    assert report.updated["families"] == 12 and "families" not in report.created
    assert db.scalar(select(Family.name).where(Family.external_id == "family-01")) == "Johnson-Reyes family"
    assert db.scalar(select(Staff).where(Staff.email == "jordan.lee@happytails.example")) is not None


def test_broken_file_reports_every_problem_with_its_path_and_writes_nothing(db: Session) -> None:
    broken = copy.deepcopy(directory())
    broken["business"]["timezone"] = "Mars/Olympus"
    broken["staff"][1]["role"] = "boss"
    broken["families"][2]["contacts"][0]["email"] = "not-an-email"
    broken["families"][3]["pets"][0]["name"] = ""
    broken["appointments"][0]["family"] = "nobody"
    broken["appointments"][1]["end"] = broken["appointments"][1]["start"]
    broken["appointments"][2]["start"] = "2026-11-24T09:00:00"
    with pytest.raises(DirectoryError) as raised:
        import_directory(db, broken, mail_domain="reply.test")
    db.rollback()
    problems = raised.value.problems
    for path in (
        "business.timezone",
        "staff[1].role",
        "families[2].contacts[0].email",
        "families[3].pets[0].name",
        "appointments[0].family",
        "appointments[1].end",
        "appointments[2].start",
    ):
        assert any(p.startswith(path + ":") for p in problems), (path, problems)
    assert counts(db) == (0, 0, 0, 0, 0)


def test_validation_of_shapes() -> None:
    assert validate_directory([]) == ["$: the directory must be a JSON object"]
    problems = validate_directory({"business": {"id": "b", "name": "B", "timezone": "UTC"}, "staff": [1], "families": {}})
    assert "staff[0]: must be an object" in problems
    assert "families: must be a list" in problems
    duplicate = directory()
    duplicate["families"][1]["id"] = duplicate["families"][0]["id"]
    assert any(p.startswith("families[1].id:") for p in validate_directory(duplicate))


def test_an_import_that_deactivates_someone_or_changes_their_password_signs_them_out(db: Session) -> None:
    import_directory(db, directory(), mail_domain="reply.test")
    db.commit()
    changed = directory()
    renewed_entry, staying_entry, leaving_entry = changed["staff"][0], changed["staff"][1], changed["staff"][2]
    staff = {s.external_id: s for s in db.scalars(select(Staff))}
    leaving, renewed, staying = (staff[e["id"]] for e in (leaving_entry, renewed_entry, staying_entry))
    now = utcnow()
    tokens = {s.id: start_staff_session(db, s, now)[1] for s in (leaving, renewed, staying)}
    db.commit()
    leaving_entry["active"] = False
    renewed_entry["password"] = "a brand new passphrase"
    import_directory(db, changed, mail_domain="reply.test")
    db.commit()
    assert live_session(db, tokens[leaving.id], utcnow()) is None
    assert live_session(db, tokens[renewed.id], utcnow()) is None
    assert live_session(db, tokens[staying.id], utcnow()) is not None
    # Importing the same file again changes nobody's password: nobody else is signed out.
    import_directory(db, changed, mail_domain="reply.test")
    db.commit()
    assert live_session(db, tokens[staying.id], utcnow()) is not None
