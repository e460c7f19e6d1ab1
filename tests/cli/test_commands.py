"""The `pawpost` command as an operator uses it: real databases, real JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from pawpost.cli import main
from threads import migrate
from tests.factories import make_business, make_family, make_staff, thread_of
from threads.db import make_engine, make_session_factory
from threads.posting import NewAttachment, post_message


def run(args: list[str], database_url: str, tmp_path: Path, **env: str) -> Result:
    environment = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path), **env}
    return CliRunner().invoke(main, args, env=environment, catch_exceptions=False)


def test_demo_is_idempotent_and_complete(database_url: str, tmp_path: Path) -> None:
    first = run(["demo", "--json"], database_url, tmp_path)
    second = run(["demo", "--json"], database_url, tmp_path)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    data = json.loads(first.stdout)
    assert data["business"]["timezone"] == "America/New_York"
    assert sorted(s["role"] for s in data["staff"]) == ["admin", "basic", "basic", "senior"]
    assert all(len(s["password"]) >= 10 for s in data["staff"])
    assert len(data["families"]) >= 12
    for family in data["families"]:
        assert [c["primary"] for c in family["contacts"]] == [True, False]
        assert family["pets"] and family["reply_address"].startswith("reply+")
        assert family["reply_address"].endswith("@reply.localhost")
    basic = {s["email"] for s in data["staff"] if s["role"] == "basic"}
    for email in basic:
        assert sum(email in f["scheduled_staff_today"] for f in data["families"]) >= 3


def test_demo_prints_sign_ins_for_humans(database_url: str, tmp_path: Path) -> None:
    result = run(["demo"], database_url, tmp_path)
    assert "morgan@happytails.example" in result.stdout and "password:" in result.stdout
    assert "reply+" in result.stdout


def test_import_rejects_a_broken_file_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    broken = {
        "business": {"id": "acme", "name": "Acme", "timezone": "Nowhere/Land"},
        "staff": [{"id": "s1", "name": "Ann", "email": "ann@acme.test", "role": "boss"}],
        "families": [{"id": "f1", "name": "Doe", "contacts": [{"name": "Jo", "email": "jo@"}]}],
    }
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = run(["import", str(path)], database_url, tmp_path)
    assert result.exit_code == 1
    assert "business.timezone:" in result.stderr
    assert "staff[0].role:" in result.stderr
    assert "families[0].contacts[0].email:" in result.stderr
    listing = run(["threads", "--json"], database_url, tmp_path)
    assert json.loads(listing.stdout) == []


def test_import_dry_run_then_real(database_url: str, tmp_path: Path) -> None:
    good = {
        "business": {"id": "acme", "name": "Acme Dog Walks", "timezone": "Europe/Paris"},
        "staff": [{"id": "s1", "name": "Ann", "email": "Ann@Acme.test", "role": "admin"}],
        "families": [{"id": "f1", "name": "Doe", "contacts": [{"name": "Jo Doe", "email": "jo@doe.test"}], "pets": [{"name": "Rex"}]}],
        "appointments": [{"id": "a1", "family": "f1", "staff": ["s1"], "start": "2026-11-24T09:00:00+01:00", "end": "2026-11-24T10:00:00+01:00"}],
    }
    path = tmp_path / "good.json"
    path.write_text(json.dumps(good))
    dry = run(["import", str(path), "--dry-run", "--json"], database_url, tmp_path)
    assert json.loads(dry.stdout)["created"]["families"] == 1
    assert json.loads(run(["threads", "--json"], database_url, tmp_path).stdout) == []
    real = run(["import", str(path)], database_url, tmp_path)
    assert real.exit_code == 0 and "imported" in real.stdout
    threads = json.loads(run(["threads", "--json"], database_url, tmp_path).stdout)
    assert [t["family"] for t in threads] == ["Doe"]
    assert set(threads[0]) == {"thread_id", "family", "reply_address", "last_message_at", "message_count"}


def test_threads_and_messages_listings(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    session: Session = make_session_factory(engine)()
    business = make_business(session)
    staff = make_staff(session, business, name="Priya Shah")
    family = make_family(session, business, name="Johnson family")
    thread = thread_of(session, family)
    post_message(session, thread, staff, "Bella had a great walk", [NewAttachment("b.jpg", "image/jpeg", b"123")])
    post_message(session, thread, family.contacts[0], "Thanks!", source="email")
    session.commit()
    thread_id = thread.id
    session.close()
    engine.dispose()
    threads = json.loads(run(["threads", "--json"], database_url, tmp_path).stdout)
    assert threads[0]["message_count"] == 2 and threads[0]["last_message_at"]
    messages = json.loads(run(["messages", str(thread_id), "--json"], database_url, tmp_path).stdout)
    assert [(m["author_type"], m["author"], m["source"], m["text"]) for m in messages] == [
        ("staff", "Priya Shah", "portal", "Bella had a great walk"),
        ("contact", "Emma Johnson", "email", "Thanks!"),
    ]
    assert messages[0]["attachments"] == [{"filename": "b.jpg", "content_type": "image/jpeg", "size": 3}]
    missing = CliRunner().invoke(main, ["messages", "999999"], env={"PAWPOST_DATABASE_URL": database_url})
    assert missing.exit_code == 1 and "no thread 999999" in missing.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PAWPOST_DATABASE_URL", "mysql://x", "PAWPOST_DATABASE_URL"),
        ("PAWPOST_NOTIFY_DELAY_SECONDS", "soon", "must be a whole number"),
        ("PAWPOST_SMTP_LISTEN", "2525", "HOST:PORT"),
    ],
)
def test_a_bad_setting_is_one_clear_line(variable: str, value: str, expected: str) -> None:
    result = CliRunner().invoke(main, ["threads"], env={variable: value})
    assert result.exit_code == 1
    assert expected in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"PAWPOST_DATABASE_URL": url})
    heads = ScriptDirectory.from_config(migrate.alembic_config(url)).get_heads()
    assert result.exit_code == 0
    assert result.stdout.strip() == f"database at revision {', '.join(sorted(heads))}"
    again = CliRunner().invoke(main, ["db", "upgrade"], env={"PAWPOST_DATABASE_URL": url})
    assert again.stdout == result.stdout


@pytest.mark.parametrize("command", ["web", "smtp", "worker"])
def test_production_processes_refuse_to_start_without_a_secret_key(command: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWPOST_")}
    env.update({"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_QUEUE_URL": "memory://", "PAWPOST_SMTP_LISTEN": "127.0.0.1:0", "PAWPOST_WEB_LISTEN": "127.0.0.1:0"})
    pawpost = Path(sys.executable).with_name("pawpost")
    done = subprocess.run([str(pawpost), command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "PAWPOST_SECRET_KEY" in done.stderr, done.stderr
    assert not (tmp_path / "secret_key").exists()


def test_demo_signs_in_with_the_development_key_not_the_published_default(database_url: str, tmp_path: Path) -> None:
    from pawpost.settings import DEFAULT_SECRET_KEY
    from threads.demo import demo_password

    result = run(["demo", "--json"], database_url, tmp_path, PAWPOST_SECRET_KEY="", PAWPOST_DEV="")
    assert result.exit_code == 0, result.output
    key = (tmp_path / "secret_key").read_text().strip()
    staff = json.loads(result.stdout)["staff"][0]
    assert staff["password"] == demo_password(key, staff["email"]) != demo_password(DEFAULT_SECRET_KEY, staff["email"])
