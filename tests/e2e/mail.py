"""What people on the other side of the relay do: read their emails and answer them."""

from __future__ import annotations

import smtplib
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, format_datetime, getaddresses, make_msgid, parseaddr
from datetime import UTC, datetime

from tests.e2e.relay import Delivery


def to(deliveries: list[Delivery], address: str) -> list[Delivery]:
    """What `address` found in their inbox, oldest first."""
    return [d for d in deliveries if address in d.rcpt_tos]


def containing(deliveries: list[Delivery], words: str) -> list[Delivery]:
    return [d for d in deliveries if words in d.text]


def sender(delivery: Delivery) -> tuple[str, str]:
    """(display name, address) of the From header."""
    return parseaddr(str(delivery.message["From"]))


def reply_to(delivery: Delivery) -> str:
    found = getaddresses([str(delivery.message["Reply-To"] or "")])
    assert len(found) == 1, f"Reply-To {delivery.message['Reply-To']!r}"
    return found[0][1]


def message_id(delivery: Delivery) -> str:
    value = str(delivery.message["Message-ID"] or "").strip()
    assert value.startswith("<") and value.endswith(">"), f"Message-ID {value!r}"
    return value


def answer(original: Delivery, author: str, address: str, words: str) -> EmailMessage:
    """A reply as a mail client writes one: the new words on top, the history quoted below."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in original.text.splitlines())
    name, from_address = sender(original)
    when = format_datetime(datetime.now(UTC))
    reply = EmailMessage()
    reply["From"] = formataddr((author, address))
    reply["To"] = reply_to(original)
    reply["Subject"] = "Re: " + str(original.message["Subject"])
    reply["Date"] = when
    reply["Message-ID"] = make_msgid(domain=address.rpartition("@")[2])
    reply["In-Reply-To"] = message_id(original)
    reply["References"] = " ".join(filter(None, [str(original.message["References"] or ""), message_id(original)]))
    reply.set_content(f"{words}\n\nOn {when}, {name} <{from_address}> wrote:\n{quoted}\n")
    return reply


def write(author: str, address: str, to_address: str, subject: str, words: str) -> EmailMessage:
    """A fresh email (no thread headers), as someone who only knows the address would send."""
    message = EmailMessage()
    message["From"] = formataddr((author, address))
    message["To"] = to_address
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2])
    message.set_content(f"{words}\n")
    return message


def send(smtp: tuple[str, int], message: EmailMessage) -> tuple[int, str]:
    """One SMTP transaction to `pawpost smtp`; returns the answer to DATA (code, text)."""
    envelope_from = parseaddr(str(message["From"]))[1]
    recipient = parseaddr(str(message["To"]))[1]
    with smtplib.SMTP(*smtp, timeout=30) as client:
        client.ehlo("mail.example.com")
        code, text = client.mail(envelope_from)
        assert code == 250, (code, text)
        code, text = client.rcpt(recipient)
        assert code == 250, (code, text)
        # smtplib fixes line ends only for str; on the wire every line ends in CRLF.
        code, text = client.data(message.as_bytes(policy=policy.SMTP))
    return code, text.decode("utf-8", "replace")
