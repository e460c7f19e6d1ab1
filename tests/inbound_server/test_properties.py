"""Property tests on mutated MIME, through the real server.

Whatever shape a client gives a reply, its quoted history is never posted. Whatever a
broken relay does to it, the server answers and stores it (never crashes), and never
answers 5xx for a cause the sender can cure by retrying. (Damaged mail is not checked for
quotes: junk between quoted lines reads, rightly, like an inline answer.)
"""

from __future__ import annotations

import base64
import itertools
import quopri
import smtplib

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from inbound.server import running_smtp_server
from pawpost.settings import Settings
from tests.inbound_server.conftest import Outage, World
from threads.models import InboundEmail, Message

MARKER = "QUOTEDHISTORY"
WORDS = ["Bella", "loved", "her", "walk", "today", "thank", "you", "Zoë", "Jürgen", "café", "at", "noon", "treats", "ok"]
PROPERTIES = hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
_ids = itertools.count(1)


def _encode(text: str, charset: str, cte: str) -> bytes:
    data = text.replace("\n", "\r\n").encode(charset)
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    if cte == "quoted-printable":
        return quopri.encodestring(data).replace(b"\r\r\n", b"\r\n").replace(b"\n", b"\r\n").replace(b"\r\r", b"\r")
    return data


def _part(content_type: str, text: str, charset: str, cte: str) -> bytes:
    head = f"Content-Type: {content_type}; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode()
    return head + _encode(text, charset, cte) + b"\r\n"


def _multipart(kind: str, parts: list[bytes], boundary: str) -> bytes:
    body = b"".join(f"--{boundary}\r\n".encode() + part for part in parts) + f"--{boundary}--\r\n".encode()
    return f'Content-Type: multipart/{kind}; boundary="{boundary}"\r\n\r\n'.encode() + body


@st.composite
def replies(draw: st.DrawFn, sender: str, to: str) -> tuple[bytes, str]:
    """A reply as some client might shape it: structure, charset, encoding and headers vary."""
    words = draw(st.lists(st.sampled_from(WORDS), min_size=2, max_size=12))
    new_text = " ".join(words).capitalize() + "."
    quote = f"{MARKER} Bella was great today, see you tomorrow."
    charset = draw(st.sampled_from(["utf-8", "iso-8859-1", "windows-1252"]))
    cte = draw(st.sampled_from(["8bit", "quoted-printable", "base64"]))
    attribution = draw(
        st.sampled_from(
            [
                "On Mon, 3 Jun 2024 at 09:12, Happy Tails <notifications@reply.test> wrote:",
                "Le lun. 3 juin 2024 à 09:12, Happy Tails <notifications@reply.test> a écrit :",
                "Am Mo., 3. Juni 2024 um 09:12 Uhr schrieb Happy Tails <notifications@reply.test>:",
            ]
        )
    )
    plain = f"{new_text}\n\n{attribution}\n> {quote}\n>\n> -- \n> Happy Tails\n"
    quote_html = draw(
        st.sampled_from(
            [
                f'<div class="gmail_quote"><div class="gmail_attr">{attribution}</div><blockquote class="gmail_quote">{quote}</blockquote></div>',
                f'<blockquote type="cite">{attribution}<br>{quote}</blockquote>',
                f'<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Happy Tails<br><b>Sent:</b> Monday</div><div>{quote}</div>',
            ]
        )
    )
    html = f"<html><body><div dir=\"ltr\">{new_text}</div><br>{quote_html}</body></html>"
    boundary = f"b{draw(st.integers(0, 10**6))}"
    structure = draw(st.sampled_from(["plain", "html", "alternative", "mixed", "related"]))
    if structure == "plain":
        body = _part("text/plain", plain, charset, cte)
    elif structure == "html":
        body = _part("text/html", html, charset, cte)
    else:
        alternative = _multipart("alternative", [_part("text/plain", plain, charset, cte), _part("text/html", html, charset, cte)], boundary + "a")
        if structure == "alternative":
            body = alternative
        else:
            extra = (
                b'Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <p1@x>\r\n'
                b'Content-Disposition: ' + (b"inline" if structure == "related" else b'attachment; filename="bella.png"') + b"\r\n\r\n"
                + base64.b64encode(b"\x89PNG fake") + b"\r\n"
            )
            body = _multipart(structure, [alternative, extra], boundary)
    message_id = f"<prop-{next(_ids)}@parents.test>"
    headers = [
        f"From: Emma Johnson <{sender}>",
        f"To: {to}",
        draw(st.sampled_from(["Subject: Re: Bella", "Subject: =?utf-8?q?Re=3A_Bella_=F0=9F=90=B6?=", "subject: RE: Bella\r\n\t(walk)"])),
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    headers += draw(st.lists(st.sampled_from(["X-Mailer: iPhone Mail", "Thread-Topic: Bella", "X-Junk: \u00e9t\u00e9", "Received: from x by y"]), max_size=3))
    headers = draw(st.permutations(headers))
    raw = "\r\n".join(headers).encode("utf-8") + b"\r\n" + body
    return raw, message_id.strip("<>")


@st.composite
def damaged(draw: st.DrawFn, sender: str, to: str) -> bytes:
    """A reply after a broken relay: cut short, junk inserted, lines lost or boundaries bent."""
    raw, _ = draw(replies(sender, to))
    lines = raw.split(b"\r\n")
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["cut", "insert", "drop", "boundary", "header"]))
        position = draw(st.integers(0, max(len(lines) - 1, 0)))
        if action == "cut":
            lines = lines[: position + 1]
        elif action == "insert":
            lines.insert(position, draw(st.binary(max_size=60)).replace(b"\r", b"").replace(b"\n", b""))
        elif action == "drop" and len(lines) > 1:
            del lines[position]
        elif action == "boundary":
            lines = [line.replace(b"--b", b"--x", 1) if draw(st.booleans()) else line for line in lines]
        elif action == "header":
            lines.insert(0, draw(st.sampled_from([b"Content-Type: multipart/mixed", b"From:", b"Message-ID: <", b": x", b"\tfolded"])))
    return b"\r\n".join(lines) + b"\r\n"


def _deliver(host: str, port: int, sender: str, to: str, raw: bytes) -> int:
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo("tests.local")
        client.mail(sender, ["BODY=8BITMIME"])
        code, _ = client.rcpt(to)
        assert code == 250
        code, _ = client.data(raw)
        return code


def test_no_client_shape_of_a_reply_posts_its_quoted_history(settings: Settings, world: World, engine: Engine) -> None:
    with running_smtp_server(settings) as (host, port):

        @PROPERTIES
        @given(email=replies(world.primary_email, world.reply_to))
        def check(email: tuple[bytes, str]) -> None:
            raw, message_id = email
            assert _deliver(host, port, world.primary_email, world.reply_to, raw) == 250
            with Session(engine) as session:
                row = session.scalars(select(InboundEmail).where(InboundEmail.message_id_header == message_id)).one()
                assert row.outcome == "posted", row.reason
                message = session.get(Message, row.posted_message_id)
                assert MARKER not in message.body and "Happy Tails" not in message.body
                assert message.body.strip()

        check()


def test_damaged_mail_is_always_answered_and_never_refused_for_good(settings: Settings, world: World, engine: Engine) -> None:
    with running_smtp_server(settings) as (host, port):

        @PROPERTIES
        @given(raw=damaged(world.primary_email, world.reply_to))
        def check(raw: bytes) -> None:
            # Every damaged email is stored with what became of it, and the server lives on.
            with Session(engine) as session:
                before = session.scalar(select(func.max(InboundEmail.id))) or 0
            assert _deliver(host, port, world.primary_email, world.reply_to, raw) == 250
            with Session(engine) as session:
                row = session.scalars(select(InboundEmail).where(InboundEmail.id > before)).one()
                assert row.outcome in ("posted", "duplicate", "quarantined", "rejected", "failed"), row.outcome
                assert len(row.raw) == len(raw) or row.outcome == "duplicate"

        check()


@pytest.mark.parametrize("kind", ["clean", "damaged"])
def test_a_transient_fault_is_never_answered_with_5xx(kind: str, settings: Settings, world: World, engine: Engine, outage: Outage) -> None:
    strategy = replies(world.primary_email, world.reply_to).map(lambda e: e[0]) if kind == "clean" else damaged(world.primary_email, world.reply_to)
    with running_smtp_server(settings, outage.session_factory) as (host, port):

        @hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(raw=strategy)
        def check(raw: bytes) -> None:
            with smtplib.SMTP(host, port, timeout=30) as client:
                client.ehlo("tests.local")
                client.mail(world.primary_email, ["BODY=8BITMIME"])
                assert client.rcpt(world.reply_to)[0] == 250
                outage.begin()
                try:
                    code, text = client.data(raw)
                finally:
                    outage.end()
            assert (code, text) == (451, b"4.3.0 Temporary failure, please try again later")

        check()
    with Session(engine) as session:
        assert session.scalars(select(InboundEmail)).first() is None


def test_a_short_reply_mentioning_a_time_keeps_its_quote_out(settings: Settings, world: World, engine: Engine) -> None:
    text = "Bella 3pm.\r\n\r\nOn Mon, 3 Jun 2024 at 09:12, Happy Tails <notifications@reply.test> wrote:\r\n> " + MARKER + "\r\n"
    raw = (
        f"From: {world.primary_email}\r\nTo: {world.reply_to}\r\nSubject: Re: Bella\r\nMessage-ID: <time-1@parents.test>\r\n\r\n{text}"
    ).encode()
    with running_smtp_server(settings) as (host, port):
        assert _deliver(host, port, world.primary_email, world.reply_to, raw) == 250
    with Session(engine) as session:
        assert session.scalars(select(Message.body)).one() == "Bella 3pm."
