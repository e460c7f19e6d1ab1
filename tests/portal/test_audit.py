"""The audit log: who changed what, when, before and after; filtered by person and by family;
never another business's changes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from sqlalchemy.orm import Session

from pawpost.cli import main
from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.bounces import mark_bouncing
from threads.types import utcnow


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


def test_shell_commands_that_change_the_directory_or_accounts_show_on_the_audit_page(
    app: Flask, world: World, db: Session, database_url: str, tmp_path: Path
) -> None:
    """`pawpost import`, `staff add`, `contacts unbounce` and `threads rotate-address` are
    changes like the portal's: the admin sees each, made by the operator at the command line."""
    garcia_email = world.other.contacts[0].addresses[0].email
    mark_bouncing(db, world.other.contacts[0].id, garcia_email, "550 5.1.1 user unknown", utcnow())
    db.commit()
    directory = {
        "business": {"id": world.business.slug, "name": world.business.name, "timezone": world.business.timezone},
        "staff": [
            {"id": world.basic.external_id, "name": "Bo Basic", "email": "bo@a.test", "role": "senior"},
            {"id": "s-new", "name": "Nia New", "email": "nia@a.test", "role": "basic"},
        ],
        "families": [{
            "id": world.scheduled.external_id, "name": "Johnson family",
            "contacts": [{"name": c.name, "email": c.addresses[0].email, "primary": c.is_primary} for c in world.scheduled.contacts],
            "pets": [{"name": "Bella", "species": "dog"}, {"name": "Rex", "species": "dog"}],
        }],
    }
    (tmp_path / "directory.json").write_text(json.dumps(directory))
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    for args, given in (
        (["import", str(tmp_path / "directory.json")], None),
        (["staff", "add", "cy@a.test", "--name", "Cy Cli", "--business", world.business.slug, "--password-stdin"], "a-long-enough-password\n"),
        (["contacts", "unbounce", garcia_email], None),
        (["threads", "rotate-address", str(world.other_thread.id)], None),
    ):
        result = runner.invoke(main, args, env=env, input=given)
        assert result.exit_code == 0, result.output
    admin, foreign = app.test_client(), app.test_client()
    sign_in_as(app, admin, world.admin)
    sign_in_as(app, foreign, world.foreign_admin)

    page = admin.get("/audit").get_data(as_text=True)
    assert page.count("<strong>operator (command line)</strong>") == 7  # the import makes four
    assert "Imported the directory from directory.json (pawpost import)" in page
    assert "Changed Bo Basic by import" in page and '<dd class="body">basic</dd>' in page and '<dd class="body">senior</dd>' in page
    assert "Added Nia New by import" in page and "nia@a.test" in page
    assert "Changed Johnson family by import" in page and "Rex (dog)" in page
    assert "Added Cy Cli &lt;cy@a.test&gt; as basic" in page
    assert f"Garcia family: cleared the bounce flag of {garcia_email}" in page
    assert "Rotated the reply address of Garcia family&#39;s thread" in page

    by_family = admin.get(f"/audit?family={world.other.id}").get_data(as_text=True)
    assert "cleared the bounce flag" in by_family and "Rotated the reply address" in by_family and "by import" not in by_family
    by_person = admin.get(f"/audit?person={world.basic.id}").get_data(as_text=True)
    assert "Changed Bo Basic by import" in by_person and "Garcia" not in by_person
    assert "operator (command line)" not in foreign.get("/audit").get_data(as_text=True)


def test_entries_name_their_family_and_link_to_its_changes(app: Flask, world: World, db: Session) -> None:
    """Names come with the entries; a family filter without entries still names its family;
    another business's family id names nothing."""
    db.rollback()
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    token = csrf_token(admin, "/audit")
    admin.post(f"/families/{world.scheduled.id}/name", data={"csrf_token": token, "name": "Johnson-Reyes family"})
    page = admin.get("/audit").get_data(as_text=True)
    assert f'<a href="/audit?family={world.scheduled.id}">Johnson-Reyes family</a>' in page
    quiet = admin.get(f"/audit?family={world.other.id}").get_data(as_text=True)
    assert "<span>Garcia family · " in quiet and "No changes recorded for this filter." in quiet
    foreign = admin.get(f"/audit?family={world.foreign_family.id}").get_data(as_text=True)
    assert "Bellamy" not in foreign and "<span>unknown family · " in foreign
