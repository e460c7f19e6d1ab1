"""The audit log: who changed what, when, before and after; filtered by person and by family;
never another business's changes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from sqlalchemy.orm import Session

from pawpost.cli import main
from tests.portal.conftest import World, csrf_token, sign_in_as


def test_changes_are_kept_with_who_when_before_and_after_and_filtered(
    app: Flask, world: World, db: Session, database_url: str, tmp_path: Path
) -> None:
    db.rollback()
    admin, foreign = app.test_client(), app.test_client()
    sign_in_as(app, admin, world.admin)
    sign_in_as(app, foreign, world.foreign_admin)
    token = csrf_token(admin, "/audit")
    admin.post(f"/families/{world.scheduled.id}/name", data={"csrf_token": token, "name": "Johnson-Reyes family"})
    admin.post(f"/staff/{world.basic.id}/role", data={"csrf_token": token, "role": "senior"})
    foreign_token = csrf_token(foreign, "/audit")
    foreign.post(f"/families/{world.foreign_family.id}/name", data={"csrf_token": foreign_token, "name": "Bellamy-Other family"})
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}
    assert CliRunner().invoke(main, ["staff", "deactivate", "sky@a.test"], env=env).exit_code == 0

    page = admin.get("/audit").get_data(as_text=True)
    assert "Johnson family: Name saved." in page and "Johnson-Reyes family" in page  # after
    assert '<dt>name</dt><dd class="body">Johnson family</dd>' in page  # before
    assert "Emma Johnson (primary): " in page
    assert "Changed Bo Basic&#39;s role" in page and '<dd class="body">basic</dd>' in page and '<dd class="body">senior</dd>' in page
    assert "operator (command line)" in page and "Deactivated Sky Senior" in page
    assert page.count("<strong>Ada Admin</strong>") == 2
    assert "Bellamy" not in page  # another business's changes are theirs

    by_family = admin.get(f"/audit?family={world.scheduled.id}").get_data(as_text=True)
    assert "Name saved" in by_family and "role" not in by_family.split("Audit log</h1>", 1)[1].split("</form>", 1)[1]
    by_person = admin.get(f"/audit?person={world.basic.id}").get_data(as_text=True)
    assert "Changed Bo Basic&#39;s role" in by_person and "Name saved" not in by_person
    assert "Bellamy-Other family" in foreign.get("/audit").get_data(as_text=True)
