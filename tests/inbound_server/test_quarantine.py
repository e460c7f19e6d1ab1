"""Quarantine review: release as a chosen contact (with an alias), discard, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from inbound.quarantine import QuarantineError, discard, quarantined_emails, release
from pawpost.cli import main
from pawpost.settings import Settings
from tests.factories import make_business, make_staff
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send
from threads.errors import AccessDenied
from threads.models import Business, Contact, InboundEmail, Staff
from threads.types import utcnow

NEW_ADDRESS = "emma.work@office.test"


@pytest.fixture
def held(smtp, world: World, engine: Engine) -> int:
    """Emma writing from her work address, which Pawpost does not know yet."""
    raw = reply_email(NEW_ADDRESS, world.reply_to, "Can Bella stay an extra night?")
    assert send(*smtp, NEW_ADDRESS, world.reply_to, raw)[0] == 250
    [row] = queries.inbound(engine)
    assert row.outcome == "quarantined"
    return row.id


def test_release_posts_as_the_chosen_contact_and_the_alias_lets_the_next_email_through(
    smtp, world: World, engine: Engine, held: int
) -> None:
    with Session(engine) as session, session.begin():
        reviewer = session.get(Staff, world.senior_id)
        assert [e.id for e in quarantined_emails(session, world.business_id)] == [held]
        message = release(
            session, session.get(InboundEmail, held), session.get(Contact, world.primary_id),
            add_alias=True, reviewer=reviewer, now=utcnow(),
        )
        message_id = message.id

    [posted] = queries.messages(engine, world.thread_id)
    assert (posted.id, posted.contact_id, posted.body) == (message_id, world.primary_id, "Can Bella stay an extra night?")
    [row] = queries.inbound(engine)
    assert (row.outcome, row.posted_message_id, row.reviewed_by_staff_id) == ("released", message_id, world.senior_id)

    raw = reply_email(NEW_ADDRESS, world.reply_to, "Thanks!")
    assert send(*smtp, NEW_ADDRESS, world.reply_to, raw)[0] == 250
    assert [m.body for m in queries.messages(engine, world.thread_id)][-1] == "Thanks!"


def test_release_refuses_a_contact_of_another_family_and_basic_reviewers(world: World, engine: Engine, held: int) -> None:
    from tests.factories import make_family

    with Session(engine) as session, session.begin():
        business = session.get(Business, world.business_id)
        stranger = make_family(session, business, contacts=("Noah Smith",)).contacts[0]
        basic = session.get(Staff, world.basic_id)
        inbound_email = session.get(InboundEmail, held)
        with pytest.raises(QuarantineError):
            release(session, inbound_email, stranger, add_alias=False, reviewer=None, now=utcnow())
        with pytest.raises(AccessDenied):
            discard(session, inbound_email, reviewer=basic, now=utcnow())
        other_business_senior = make_staff(session, make_business(session, name="Other Tails"), role="senior")
        with pytest.raises(AccessDenied):
            discard(session, inbound_email, reviewer=other_business_senior, now=utcnow())
        session.rollback()
    assert queries.inbound(engine)[0].outcome == "quarantined"


def test_discard_keeps_the_email_marked_and_it_cannot_be_released_afterwards(world: World, engine: Engine, held: int) -> None:
    with Session(engine) as session, session.begin():
        discard(session, session.get(InboundEmail, held), reviewer=session.get(Staff, world.senior_id), now=utcnow())
    with Session(engine) as session, session.begin():
        with pytest.raises(QuarantineError):
            release(session, session.get(InboundEmail, held), session.get(Contact, world.primary_id),
                    add_alias=False, reviewer=None, now=utcnow())

    [row] = queries.inbound(engine)
    assert row.outcome == "discarded" and row.raw and queries.messages(engine, world.thread_id) == []


def test_the_quarantine_cli_lists_shows_releases_and_discards(
    settings: Settings, world: World, engine: Engine, held: int, smtp, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {**settings.environment(), "PAWPOST_QUEUE_URL": "memory://", "PAWPOST_DATA_DIR": str(tmp_path)}

    listed = runner.invoke(main, ["quarantine", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(r["id"], r["sender"]) for r in json.loads(listed.output)] == [(held, NEW_ADDRESS)]

    shown = runner.invoke(main, ["quarantine", "show", str(held), "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["text"] == "Can Bella stay an extra night?"
    assert {c["id"] for c in data["contacts"]} == {world.primary_id, world.secondary_id}

    released = runner.invoke(
        main, ["quarantine", "release", str(held), "--contact", str(world.secondary_id), "--by", world.senior_email], env=env
    )
    assert released.exit_code == 0, released.output
    assert [m.contact_id for m in queries.messages(engine, world.thread_id)] == [world.secondary_id]

    again = runner.invoke(main, ["quarantine", "discard", str(held)], env=env)
    assert again.exit_code != 0 and "released, not quarantined" in again.output
    assert "nothing in quarantine" in runner.invoke(main, ["quarantine", "list"], env=env).output


def test_the_quarantine_cli_shows_a_deeply_nested_email_from_a_stranger(
    settings: Settings, world: World, engine: Engine, smtp, tmp_path: Path
) -> None:
    """Issue 11, point 12: 50,000 nested <div> made `pawpost quarantine show` crash (RecursionError)."""
    stranger = "stranger@elsewhere.test"
    raw = (
        f"From: {stranger}\r\nTo: {world.reply_to}\r\nSubject: Re: Bella\r\n"
        "Message-ID: <deep-held@elsewhere.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Is Bella free on Friday?</p>\r\n" + "<div>\r\n" * 50_000 + "x" + "</div>\r\n" * 50_000
    ).encode()
    assert send(*smtp, stranger, world.reply_to, raw)[0] == 250
    [row] = queries.inbound(engine)
    assert row.outcome == "quarantined"

    env = {**settings.environment(), "PAWPOST_QUEUE_URL": "memory://", "PAWPOST_DATA_DIR": str(tmp_path)}
    shown = CliRunner().invoke(main, ["quarantine", "show", str(row.id), "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["text"].startswith("Is Bella free on Friday?")


def test_a_held_email_becomes_an_email_quarantined_event(smtp, world: World, engine: Engine) -> None:
    from sqlalchemy import select

    from threads.models import WebhookDelivery
    from threads.webhooks import create_endpoint

    with Session(engine) as session, session.begin():
        endpoint, _secret = create_endpoint(
            session, world.business_id, url="https://crm.example.test/in", events=["email.quarantined"], development=False, secret_key="inbound-tests-key", now=utcnow()
        )
        endpoint_id = endpoint.id
    raw = reply_email(NEW_ADDRESS, world.reply_to, "Can Bella stay an extra night?")
    assert send(*smtp, NEW_ADDRESS, world.reply_to, raw)[0] == 250
    [row] = queries.inbound(engine)
    with Session(engine) as session:
        [delivery] = session.scalars(select(WebhookDelivery)).all()
        event = json.loads(delivery.payload)
    assert delivery.endpoint_id == endpoint_id and event["type"] == "email.quarantined"
    assert event["data"]["inbound_email_id"] == row.id and event["data"]["sender"] == NEW_ADDRESS
    assert "Bella" not in delivery.payload  # the held text stays in Pawpost
