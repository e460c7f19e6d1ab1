"""Issue 11, point 9: rotating a reply address shuts a leaked email out entirely: its
token, and the Message-IDs tokenless routing would match (root, outbox, received), while
mail accepted before the rotation still posts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from inbound.ingest import process_stored_email
from inbound.server import running_smtp_server
from pawpost.cli import main
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send
from tests.inbound_server.test_auto_reply_race import stored_only  # noqa: F401  (fixture)
from tests.inbound_server.test_kinds_and_authors import outbox_row
from threads.db import make_engine, make_session_factory
from threads.models import Thread

NO_CONVERSATION = (550, "5.1.1 No conversation found for this recipient")
NO_RECIPIENT = (550, "5.1.1 No such recipient here")


def process_all(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    for row in queries.inbound(engine):
        if row.outcome == "received":
            process_stored_email(sessions, settings, row.id)
    engine.dispose()


def rotate(database_url: str, tmp_path: Path, thread_id: int) -> dict[str, str]:
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_REPLY_DOMAIN": MAIL_DOMAIN}
    result = CliRunner().invoke(main, ["threads", "rotate-address", str(thread_id), "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_rotation_shuts_out_the_leaked_address_and_every_earlier_message_id(
    stored_only: Settings, world: World, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    digest = outbox_row(engine, world)  # an email Pawpost sent before the leak
    emma, leaked = world.primary_email, world.reply_to
    tokenless = f"replies@{MAIL_DOMAIN}"
    with running_smtp_server(stored_only) as (host, port):
        # Before the rotation: a reply by token, and one whose token was stripped.
        assert send(host, port, emma, leaked, reply_email(emma, leaked, "First", message_id="<first@parents.test>"))[0] == 250
        early = reply_email(emma, tokenless, "Second", message_id="<second@parents.test>", references=f"<{world.root_message_id}>")
        assert send(host, port, emma, tokenless, early)[0] == 250
        process_all(stored_only)
        assert [m.body for m in queries.messages(engine, world.thread_id)] == ["First", "Second"]
        # Accepted, not yet processed when the address is rotated.
        assert send(host, port, emma, leaked, reply_email(emma, leaked, "Third", message_id="<third@parents.test>"))[0] == 250

        rotated = rotate(database_url, tmp_path, world.thread_id)

        assert rotated["thread_id"] == world.thread_id and rotated["reply_address"] != leaked
        assert rotated["reply_address"].startswith("reply+") and rotated["reply_address"].endswith(f"@{MAIL_DOMAIN}")
        with Session(engine) as session:
            new_root = session.get(Thread, world.thread_id).root_message_id
        assert new_root != world.root_message_id
        # Whoever holds the leaked email: its token, and every id it could quote, are dead.
        assert send(host, port, emma, leaked, reply_email(emma, leaked, "Leak 1"))[:2] == NO_RECIPIENT
        for n, reference in enumerate(
            [world.root_message_id, digest.message_id_header, "first@parents.test", "second@parents.test"]
        ):
            forged = reply_email(emma, tokenless, f"Leak {n + 2}", references=f"<{reference}>", in_reply_to=f"<{reference}>")
            assert send(host, port, emma, tokenless, forged)[:2] == NO_CONVERSATION, reference
        # The new address works, and so does a stripped token naming the new root id.
        new = rotated["reply_address"]
        assert send(host, port, emma, new, reply_email(emma, new, "Fourth", message_id="<fourth@parents.test>"))[0] == 250
        later = reply_email(emma, tokenless, "Fifth", message_id="<fifth@parents.test>", references=f"<{new_root}>")
        assert send(host, port, emma, tokenless, later)[0] == 250
        process_all(stored_only)

    # Nothing accepted before the rotation is lost; nothing of the leak got in.
    assert [m.body for m in queries.messages(engine, world.thread_id)] == ["First", "Second", "Third", "Fourth", "Fifth"]


def test_rotating_an_unknown_thread_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["threads", "rotate-address", "999999"], env=env)
    assert result.exit_code == 1 and "no thread 999999" in result.output


def test_threads_still_lists_without_a_subcommand(world: World, database_url: str, tmp_path: Path) -> None:
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_REPLY_DOMAIN": MAIL_DOMAIN}
    result = CliRunner().invoke(main, ["threads", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert [row["reply_address"] for row in json.loads(result.stdout)] == [world.reply_to]
