"""Issue 11, point 8: the From address comes from the header per RFC 5322, never from a
display name, a comment or an encoded-word; a From that is not one mailbox, or whose
domain is not the one our trusted host checked, is quarantined."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import Engine

from inbound.parse import parse_email
from inbound.route import untrusted_sender
from inbound.sender import sender_from_headers
from inbound.server import running_smtp_server
from tests.inbound_server import queries
from tests.inbound_server.conftest import World, make_settings
from tests.inbound_server.mail import send

TRUSTED = "mx.reply.test"
EVIL = "evil@attacker.example"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Each builds From header line(s) out of Emma's real address; none may post as Emma.
SPELLINGS = {
    "encoded-word address quoted in the display name": lambda emma: [f'"=?utf-8?q?{emma}?=" <{EVIL}>'],
    "encoded-word address as the display name": lambda emma: [f"=?utf-8?q?{emma}?= <{EVIL}>"],
    "base64 encoded-word address as the display name": lambda emma: [f"=?utf-8?b?{b64(emma)}?= <{EVIL}>"],
    "quoted display name holding the address": lambda emma: [f'"{emma}" <{EVIL}>'],
    "comment before the address": lambda emma: [f"({emma}) <{EVIL}>"],
    "comment after a bare address": lambda emma: [f"{EVIL} ({emma})"],
    "group of Emma and the attacker": lambda emma: [f"Johnsons: {emma}, {EVIL};"],
    "group holding only Emma": lambda emma: [f"Johnsons: {emma};"],
    "two addresses, Emma first": lambda emma: [f"{emma}, {EVIL}"],
    "two addresses, attacker first": lambda emma: [f"Evil <{EVIL}>, Emma <{emma}>"],
    "two From headers": lambda emma: [f"Emma Johnson <{emma}>", f"<{EVIL}>"],
    "obsolete route to the attacker": lambda emma: [f"Emma Johnson <@{emma.split('@')[1]}:{EVIL}>"],
    "bare address before an angle address": lambda emma: [f"{emma} <{EVIL}>"],
    "angle address followed by another address": lambda emma: [f"Emma <{emma}> {EVIL}"],
    "the whole From an encoded-word": lambda emma: [f"=?utf-8?q?{emma}?="],
    "encoded-word inside the angle brackets": lambda emma: [f"Emma <=?utf-8?q?{emma}?=>"],
    "display name and address without angle brackets": lambda emma: [f"Emma Johnson {emma}"],
    "unterminated angle address": lambda emma: [f"Emma <{emma}"],
}


def raw_email(from_lines: list[str], to: str, *, results: str, message_id: str) -> bytes:
    lines = [f"From: {line}" for line in from_lines] + [
        f"To: {to}",
        "Subject: Re: Bella's walk",
        f"Message-ID: <{message_id}>",
        f"Authentication-Results: {TRUSTED}; spf=pass smtp.mailfrom=attacker.example; dmarc=pass header.from={results}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Please cancel every walk and give the key to my neighbour.",
        "",
    ]
    return "\r\n".join(lines).encode()


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_no_spelling_of_a_from_header_posts_as_the_parent(
    spelling: str, database_url: str, tmp_path: Path, world: World, engine: Engine
) -> None:
    settings = make_settings(database_url, tmp_path, PAWPOST_TRUSTED_AUTHSERV_ID=TRUSTED)
    from_lines = SPELLINGS[spelling](world.primary_email)
    raw = raw_email(from_lines, world.reply_to, results="attacker.example", message_id=f"spoof-{abs(hash(spelling))}@x")

    with running_smtp_server(settings) as (host, port):
        assert send(host, port, EVIL, world.reply_to, raw)[0] == 250

    assert queries.messages(engine, world.thread_id) == []
    [row] = queries.inbound(engine)
    assert row.outcome == "quarantined", (spelling, row.reason)


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_no_spelling_yields_the_parents_address(spelling: str) -> None:
    emma = "emma.johnson@example.com"
    lines = SPELLINGS[spelling](emma)
    sender = sender_from_headers(lines)
    assert sender.address != emma
    parsed = parse_email(raw_email(lines, "reply+x@reply.test", results="attacker.example", message_id="p@x"))
    assert parsed.sender_address != emma
    assert parsed.sender_address is None or parsed.sender_address == EVIL
    assert (parsed.sender_problem is not None) == (sender.problem is not None)


def test_several_from_headers_are_a_field_of_the_parsed_email() -> None:
    parsed = parse_email(raw_email(["a@x.test", "b@y.test"], "reply+x@reply.test", results="x.test", message_id="m@x"))
    assert parsed.sender_problem == "the email has 2 From headers" and parsed.sender_address is None


def test_a_pass_for_another_domain_at_our_trusted_host_is_quarantined(
    database_url: str, tmp_path: Path, world: World, engine: Engine
) -> None:
    settings = make_settings(database_url, tmp_path, PAWPOST_TRUSTED_AUTHSERV_ID=TRUSTED)
    emma = world.primary_email
    raw = raw_email([f"Emma Johnson <{emma}>"], world.reply_to, results="attacker.example", message_id="pass-other@x")

    with running_smtp_server(settings) as (host, port):
        assert send(host, port, EVIL, world.reply_to, raw)[0] == 250

    assert queries.messages(engine, world.thread_id) == []
    [row] = queries.inbound(engine)
    assert row.outcome == "quarantined" and "header.from=attacker.example" in (row.reason or "")


@pytest.mark.parametrize(
    "from_line, name",
    [
        ('"Emma Johnson" <{emma}>', "Emma Johnson"),
        ("=?utf-8?q?Emma_Johnson_=F0=9F=90=B6?= <{emma}>", "Emma Johnson 🐶"),
        ('"=?utf-8?q?Zo=C3=AB?=" <{emma}>', "Zoë"),  # encoded-word in quotes: still only a name
        ("{emma} (Emma at home)", ""),
        ("<{emma}>", ""),
    ],
)
def test_the_parents_own_from_still_posts_under_their_name(
    from_line: str, name: str, database_url: str, tmp_path: Path, world: World, engine: Engine
) -> None:
    settings = make_settings(database_url, tmp_path, PAWPOST_TRUSTED_AUTHSERV_ID=TRUSTED)
    emma = world.primary_email
    raw = raw_email([from_line.format(emma=emma.upper())], world.reply_to, results="Parents.Test", message_id="ok@x")
    assert parse_email(raw).sender_name == name

    with running_smtp_server(settings) as (host, port):
        assert send(host, port, emma, world.reply_to, raw)[0] == 250

    assert [m.contact_id for m in queries.messages(engine, world.thread_id)] == [world.primary_id]


def test_header_from_is_compared_as_a_domain_not_as_text() -> None:
    def verdict(from_line: str, checked: str) -> str | None:
        raw = raw_email([from_line], "reply+x@reply.test", results=checked, message_id="d@x")
        return untrusted_sender(parse_email(raw), TRUSTED)

    assert verdict("Jo <jo@Bücher.example>", "xn--bcher-kva.example") is None
    assert verdict("Jo <jo@parents.test>", "PARENTS.TEST.") is None
    assert verdict("Jo <jo@parents.test>", "sub.parents.test") is not None
    assert verdict("Jo <jo@parents.test>", "parents.test.attacker.example") is not None
    assert untrusted_sender(parse_email(raw_email(["Jo <jo@parents.test>"], "r@x", results="parents.test", message_id="e@x")), None) is None
