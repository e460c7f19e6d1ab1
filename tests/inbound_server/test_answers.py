"""Every answer of DESIGN.md's SMTP table, over a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import smtplib
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from inbound.server import running_smtp_server
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN
from tests.inbound_server import queries
from tests.inbound_server.conftest import World, make_settings
from tests.inbound_server.mail import reply_email, send, transaction
from threads.addresses import rotate_reply_token
from threads.models import Thread


def test_a_parent_reply_is_posted_without_its_quoted_history(smtp, world: World, engine: Engine) -> None:
    code, text = send(*smtp, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))

    assert (code, text) == (250, "2.0.0 Message accepted")
    [message] = queries.messages(engine, world.thread_id)
    assert message.body == "Bella loved her walk, thank you!"
    assert message.contact_id == world.primary_id and message.source == "email"
    assert "Bella was great today" in (message.trimmed or "")
    [row] = queries.inbound(engine)
    assert (row.outcome, row.posted_message_id, row.thread_id) == ("posted", message.id, world.thread_id)
    assert row.raw.startswith(b"From: Sender") and row.processing_ms is not None


def test_a_recipient_on_a_foreign_domain_is_refused_as_relaying(smtp, world: World, engine: Engine) -> None:
    raw = reply_email(world.primary_email, "someone@elsewhere.example")

    assert send(*smtp, world.primary_email, "someone@elsewhere.example", raw) == (550, "5.7.1 Relaying denied")
    assert queries.inbound_count(engine) == 0


def test_an_unknown_token_is_refused_at_rcpt(smtp, world: World) -> None:
    address = f"reply+{'a' * 24}@{MAIL_DOMAIN}"

    assert send(*smtp, world.primary_email, address, reply_email(world.primary_email, address)) == (
        550,
        "5.1.1 No such recipient here",
    )


def test_a_rotated_away_token_is_refused_not_misrouted(smtp, world: World, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        rotate_reply_token(session, session.get(Thread, world.thread_id))
    raw = reply_email(world.primary_email, world.reply_to)

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0:2] == (550, "5.1.1 No such recipient here")
    assert queries.messages(engine, world.thread_id) == []


def test_a_message_over_the_size_limit_is_refused_with_552(database_url: str, tmp_path: Path, world: World, engine: Engine) -> None:
    settings = make_settings(database_url, tmp_path, PAWPOST_MAX_MESSAGE_BYTES="4096")
    raw = reply_email(world.primary_email, world.reply_to, "x" * 70 + "\n" + ("long line of text " * 4 + "\n") * 80)
    with running_smtp_server(settings) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, raw) == (552, "5.3.4 Message too big for system")
        # An MTA that announces the size is refused before it uploads anything.
        answer = send(host, port, world.primary_email, world.reply_to, raw, options=(f"SIZE={len(raw)}",))
        assert answer == (552, "5.3.4 Message too big for system")
    assert queries.inbound_count(engine) == 0


def test_the_same_message_id_delivered_again_is_accepted_stored_once_posted_once(smtp, world: World, engine: Engine) -> None:
    raw = reply_email(world.primary_email, world.reply_to, message_id="<same-123@parents.test>")

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    assert len(queries.messages(engine, world.thread_id)) == 1
    first, second = queries.inbound(engine)
    assert (first.outcome, second.outcome) == ("posted", "duplicate")
    assert second.raw == b"" and second.posted_message_id == first.posted_message_id


def test_an_email_without_message_id_is_deduplicated_by_its_bytes(smtp, world: World, engine: Engine) -> None:
    raw = b"\r\n".join(
        [
            f"From: {world.primary_email}".encode(),
            f"To: {world.reply_to}".encode(),
            b"Subject: no id",
            b"",
            b"Walk at 3 works for us.",
            b"",
        ]
    )

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    [message] = queries.messages(engine, world.thread_id)
    assert message.body == "Walk at 3 works for us."
    assert [r.outcome for r in queries.inbound(engine)] == ["posted", "duplicate"]


def test_our_domain_without_token_is_routed_by_in_reply_to(smtp, world: World, engine: Engine) -> None:
    address = f"reply@{MAIL_DOMAIN}"
    raw = reply_email(world.secondary_email, address, in_reply_to=f"<{world.root_message_id}>")

    assert send(*smtp, world.secondary_email, address, raw)[0] == 250
    [message] = queries.messages(engine, world.thread_id)
    assert message.contact_id == world.secondary_id


def test_our_domain_without_token_is_routed_by_references(smtp, world: World, engine: Engine) -> None:
    address = f"REPLY@{MAIL_DOMAIN.upper()}"
    raw = reply_email(
        world.secondary_email, address, in_reply_to="<unknown@x.test>", references=f"<{world.root_message_id}> <a@b.test>"
    )

    assert send(*smtp, world.secondary_email, address, raw)[0] == 250
    assert len(queries.messages(engine, world.thread_id)) == 1


def test_our_domain_without_token_and_no_known_reference_is_refused_at_data(smtp, world: World, engine: Engine) -> None:
    address = f"hello@{MAIL_DOMAIN}"
    client = transaction(*smtp, world.primary_email, address)  # accepted at RCPT: routing needs the content
    try:
        code, text = client.data(reply_email(world.primary_email, address, in_reply_to="<nothing@x.test>"))
    finally:
        client.quit()

    assert (code, text.decode()) == (550, "5.1.1 No conversation found for this recipient")
    assert queries.inbound_count(engine) == 0


def test_an_unknown_sender_is_quarantined_not_posted(smtp, world: World, engine: Engine) -> None:
    raw = reply_email("stranger@spam.test", world.reply_to)

    assert send(*smtp, "stranger@spam.test", world.reply_to, raw)[0] == 250
    assert queries.messages(engine, world.thread_id) == []
    [row] = queries.inbound(engine)
    assert row.outcome == "quarantined" and "not a contact of this family" in (row.reason or "")


def test_a_contact_of_another_family_is_quarantined(smtp, world: World, engine: Engine, settings: Settings) -> None:
    from tests.factories import make_family

    with Session(engine) as session, session.begin():
        from threads.models import Business

        other = make_family(session, session.get(Business, world.business_id), contacts=("Noah Smith",))
        other_email = other.contacts[0].email or ""

    assert send(*smtp, other_email, world.reply_to, reply_email(other_email, world.reply_to))[0] == 250
    assert queries.messages(engine, world.thread_id) == []
    assert queries.inbound(engine)[0].outcome == "quarantined"


def test_a_failed_dmarc_at_our_trusted_host_is_quarantined(database_url: str, tmp_path: Path, world: World, engine: Engine) -> None:
    settings = make_settings(database_url, tmp_path, PAWPOST_TRUSTED_AUTHSERV_ID="mx.reply.test")
    forged = reply_email(
        world.primary_email,
        world.reply_to,
        headers={"Authentication-Results": "mx.reply.test; spf=fail smtp.mailfrom=x.test; dmarc=fail (p=none) header.from=parents.test"},
    )
    # The same claim from a host we do not trust changes nothing.
    untrusted = reply_email(
        world.primary_email, world.reply_to, "Second note", headers={"Authentication-Results": "evil.test; dmarc=fail"}
    )
    with running_smtp_server(settings) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, forged)[0] == 250
        assert send(host, port, world.primary_email, world.reply_to, untrusted)[0] == 250

    assert [m.body for m in queries.messages(engine, world.thread_id)] == ["Second note"]
    assert [r.outcome for r in queries.inbound(engine)] == ["quarantined", "posted"]


def test_ehlo_offers_smtputf8_and_8bitmime_and_accepts_utf8_mail(smtp, world: World, engine: Engine) -> None:
    with smtplib.SMTP(*smtp, timeout=30) as client:
        client.ehlo("tests.local")
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        assert not client.has_extn("auth") and not client.has_extn("starttls")
    raw = "\r\n".join(
        [
            f"From: Zoë Johnson <{world.primary_email}>",
            f"To: {world.reply_to}",
            "Subject: Grüße",
            "Message-ID: <utf8-1@parents.test>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
            "Zoë und Jürgen sagen danke 🐶",
            "",
        ]
    ).encode("utf-8")

    code, _ = send(*smtp, "zoë@parents.test", world.reply_to, raw, options=("SMTPUTF8", "BODY=8BITMIME"))

    assert code == 250
    assert queries.messages(engine, world.thread_id)[0].body == "Zoë und Jürgen sagen danke 🐶"


def test_more_recipients_than_a_reply_needs_are_deferred(smtp, world: World) -> None:
    with smtplib.SMTP(*smtp, timeout=30) as client:
        client.ehlo("tests.local")
        client.mail(world.primary_email)
        answers = [client.rcpt(world.reply_to)[0] for _ in range(21)]

    assert answers == [250] * 20 + [452]


def test_nul_bytes_and_broken_utf8_are_stored_not_retried_forever(smtp, world: World, engine: Engine) -> None:
    raw = (
        f"From: Emma \xff\x00 <{world.primary_email}>\r\nTo: {world.reply_to}\r\n".encode("latin-1")
        + b"Subject: caf\xe9 \x00 \xc3\r\nMessage-ID: <nul\x00-1@parents.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + b"Content-Transfer-Encoding: 8bit\r\n\r\nSee you\x00 at 3 \xff\xfe caf\xc3\xa9\r\n"
    )

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
    [row] = queries.inbound(engine)
    assert row.raw == raw
    assert row.outcome == "posted"
    [message] = queries.messages(engine, world.thread_id)
    assert "\x00" not in message.body and message.body.startswith("See you")
