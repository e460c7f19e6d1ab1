"""classify() on golden auto-replies, bounces, loops and replies."""

from pathlib import Path

import pytest

from inbound.classify import Kind, classify
from inbound.parse import parse_email

EML = Path(__file__).resolve().parent.parent / "data" / "eml"
DOMAIN = "reply.pawpost.test"


def verdict(name: str, **kwargs):
    return classify(parse_email((EML / name).read_bytes()), reply_domain=DOMAIN, **kwargs)


def raw_verdict(headers: str, body: str = "Hello there.\n"):
    return classify(parse_email((headers + "\n\n" + body).encode()), reply_domain=DOMAIN)


@pytest.mark.parametrize("name", ["gmail_web.eml", "outlook_desktop.eml", "french.eml", "forward.eml"])
def test_people_write_replies(name: str) -> None:
    result = verdict(name)
    assert (result.kind, result.reason, result.failed_recipients) == (Kind.REPLY, None, ())


def test_outlook_out_of_office() -> None:
    result = verdict("auto_reply.eml")
    assert result.kind is Kind.AUTO_REPLY
    assert result.reason == "Auto-Submitted: auto-generated"
    assert result.summary == "I am out of the office until March 11 with limited access to email."


def test_german_autoreply_header() -> None:
    result = verdict("auto_reply_de.eml")
    assert (result.kind, result.summary) == (Kind.AUTO_REPLY, "Vielen Dank für Ihre Nachricht.")


def test_dsn_bounce_lists_recipients() -> None:
    result = verdict("bounce_dsn.eml")
    assert result.kind is Kind.BOUNCE
    assert [(r.address, r.status, r.action, r.permanent) for r in result.failed_recipients] == [
        ("old.address@example.net", "5.1.1", "failed", True),
        ("slow@example.org", "4.4.1", "delayed", False),
    ]
    assert result.permanent


def test_exim_bounce_from_x_failed_recipients() -> None:
    result = verdict("bounce_exim.eml")
    assert result.kind is Kind.BOUNCE
    assert [r.address for r in result.failed_recipients] == ["gone@example.com"]


@pytest.mark.parametrize(
    "headers",
    [
        "From: a@b.example\nAuto-Submitted: auto-replied\nSubject: Re: walk",
        "From: a@b.example\nX-Autoreply: yes\nSubject: Re: walk",
        "From: a@b.example\nX-Autorespond: yes\nSubject: Re: walk",
        "From: a@b.example\nPrecedence: bulk\nSubject: Re: walk",
        "From: a@b.example\nPrecedence: auto_reply\nSubject: Re: walk",
        "From: a@b.example\nX-MS-Exchange-Inbox-Rules-Loop: a@b.example\nSubject: Re: walk",
        "From: noreply@b.example\nSubject: Re: walk",
        "From: no-reply@b.example\nSubject: Re: walk",
        "From: a@b.example\nSubject: Out of Office: Re: walk",
        "From: a@b.example\nSubject: Automatic reply: walk",
        "From: a@b.example\nSubject: Réponse automatique : walk",
        "From: a@b.example\nSubject: Respuesta automática: walk",
        "From: a@b.example\nSubject: Fuera de la oficina",
        "From: a@b.example\nSubject: Risposta automatica: walk",
        "From: a@b.example\nSubject: Automatisch antwoord: walk",
        "From: a@b.example\nSubject: Absence jusqu'au 3 mai",
    ],
)
def test_auto_reply_signals(headers: str) -> None:
    assert raw_verdict(headers).kind is Kind.AUTO_REPLY


def test_auto_submitted_no_is_a_person() -> None:
    assert raw_verdict("From: a@b.example\nAuto-Submitted: no\nSubject: Re: walk").kind is Kind.REPLY


@pytest.mark.parametrize(
    "sender", ["notifications@reply.pawpost.test", "reply+abc@reply.pawpost.test", "Notifications@Pawpost.Test"]
)
def test_our_own_mail_is_a_loop(sender: str) -> None:
    raw = parse_email(("From: %s\nSubject: x\n\nhi\n" % sender).encode())
    result = classify(raw, reply_domain=DOMAIN, own_addresses=("notifications@pawpost.test",))
    assert result.kind is Kind.LOOP


def test_long_first_sentence_is_shortened() -> None:
    body = "I am away " + "and very far " * 20 + "until Monday."
    result = raw_verdict("From: a@b.example\nAuto-Submitted: auto-replied\nSubject: away", body)
    assert result.summary is not None and len(result.summary) <= 120 and result.summary.endswith("…")
