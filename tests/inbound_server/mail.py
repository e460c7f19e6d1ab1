"""Building emails and sending them over a real socket with smtplib."""

from __future__ import annotations

import itertools
import smtplib
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

_counter = itertools.count(1)


def reply_email(
    sender: str,
    to: str,
    text: str = "Bella loved her walk, thank you!",
    *,
    quote: str | None = "Your walker wrote: Bella was great today.",
    subject: str = "Re: Bella's walk",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain reply the way mail clients write them: new text, then the quoted history."""
    message = EmailMessage()
    message["From"] = f"Sender <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(idstring=f"t{next(_counter)}", domain="parents.test")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    body = text
    if quote is not None:
        body += "\n\nOn Mon, 3 Jun 2024 at 09:12, Happy Tails <notifications@reply.test> wrote:\n> " + quote + "\n"
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def send(
    host: str, port: int, mail_from: str, rcpts: list[str] | str, raw: bytes, *, options: tuple[str, ...] = ()
) -> tuple[int, str]:
    """Deliver like an MTA would and return the answer that decided it (code, text)."""
    rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo("tests.local")
        code, text = client.mail(mail_from, list(options))
        if code != 250:
            return code, text.decode()
        accepted, refusal = 0, (0, "")
        for rcpt in rcpts:
            code, text = client.rcpt(rcpt)
            if code == 250:
                accepted += 1
            elif not refusal[0]:
                refusal = (code, text.decode())
        if not accepted:
            return refusal
        code, text = client.data(raw)
        return code, text.decode()


def transaction(host: str, port: int, mail_from: str, rcpt: str) -> smtplib.SMTP:
    """An open session that passed RCPT: the caller sends DATA (and closes it)."""
    client = smtplib.SMTP(host, port, timeout=30)
    client.ehlo("tests.local")
    code, _ = client.mail(mail_from)
    assert code == 250
    code, text = client.rcpt(rcpt)
    assert code == 250, text
    return client
