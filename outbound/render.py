"""Rendering: plain data in, a finished `EmailMessage` out. Pure: no database, no clock.

Every email is multipart/alternative (text for any client, HTML that reads on a phone),
carries the thread's reply address in `Reply-To`, its own `Message-ID`, `In-Reply-To` and
`References` to the thread's root id (clients group a family's emails), Outlook's
`Thread-Topic`/`Thread-Index`, and the RFC 3834 markers that stop auto-replies. The
`From` is always Pawpost's notifications address: a staff member's own domain would fail
DMARC from our servers, so their name only appears as the display name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# Anything below space (CR, LF, TAB, NUL…) and DEL: never allowed into a header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
MAX_HEADER_TEXT = 200


@dataclass(frozen=True)
class Envelope:
    """The headers of one email; `message_id` and `root_message_id` without brackets."""

    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str
    message_id: str
    root_message_id: str
    subject: str
    thread_index: str
    date: datetime


@dataclass(frozen=True)
class InlineImage:
    """An image attached to the email and shown in the HTML part by its Content-ID."""

    filename: str
    content_type: str
    content: bytes
    content_id: str


@dataclass(frozen=True)
class FileLink:
    """A file too big to attach (or not an image): linked instead."""

    filename: str
    size: int
    url: str


@dataclass(frozen=True)
class ShownMessage:
    author_name: str
    when: str
    body: str
    images: tuple[InlineImage, ...] = ()
    links: tuple[FileLink, ...] = ()

    @property
    def paragraphs(self) -> list[list[str]]:
        """The body as paragraphs of lines, so the HTML keeps the writer's line breaks."""
        blocks = re.split(r"\n\s*\n", self.body.replace("\r\n", "\n").strip())
        return [block.split("\n") for block in blocks if block.strip()]


@dataclass(frozen=True)
class DigestContent:
    business_name: str
    family_name: str
    recipient_name: str
    messages: tuple[ShownMessage, ...]


@dataclass(frozen=True)
class AlertContent:
    business_name: str
    family_name: str
    pet_names: str
    appointments: tuple[str, ...]
    message: ShownMessage
    portal_url: str
    recipient_name: str


@dataclass(frozen=True)
class EscalationContent:
    business_name: str
    family_name: str
    pet_names: str
    minutes: int
    messages: tuple[ShownMessage, ...]
    portal_url: str
    recipient_name: str


def header_text(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """A single-line header value: control characters become spaces, length is capped.

    This is what makes header injection through a name or a subject impossible.
    """
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def thread_subject(business_name: str, family_name: str, pet_names: str) -> str:
    """The subject of every email about one thread: stable, so clients keep it together."""
    about = f"{family_name} ({pet_names})" if pet_names else family_name
    return header_text(f"{business_name}: {about}")


def local_time(moment: datetime, timezone: str) -> str:
    """How a message's time reads to someone at the business, e.g. "Tue 3 Jun, 2:05 PM"."""
    local = moment.astimezone(ZoneInfo(timezone))
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')}, {hour}:{local.strftime('%M %p')}"


def render_digest(envelope: Envelope, content: DigestContent) -> EmailMessage:
    """The parent notification: every message they have not read, in one email."""
    context = {"c": content, "images": [i for m in content.messages for i in m.images]}
    return _build(envelope, "digest", context)


def render_alert(envelope: Envelope, content: AlertContent) -> EmailMessage:
    """A staff alert: a parent wrote in a thread of a family the staff member sees today."""
    return _build(envelope, "alert", {"c": content, "images": list(content.message.images)})


def render_escalation(envelope: Envelope, content: EscalationContent) -> EmailMessage:
    """To senior staff: parent messages nobody on the team has read for a while."""
    context = {"c": content, "images": [i for m in content.messages for i in m.images]}
    return _build(envelope, "escalation", context)


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("outbound", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _build(envelope: Envelope, name: str, context: dict[str, object]) -> EmailMessage:
    env = _templates()
    text = env.get_template(f"{name}.txt").render(context)
    html = env.get_template(f"{name}.html").render(context)
    message = EmailMessage(policy=SMTP)
    _set_headers(message, envelope)
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    images = context.get("images") or []
    if images:
        html_part = message.get_payload()[1]  # type: ignore[index]
        for image in images:  # type: ignore[attr-defined]
            maintype, _, subtype = image.content_type.partition("/")
            html_part.add_related(
                image.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                cid=f"<{image.content_id}>",
                filename=header_text(image.filename, 150),
                disposition="inline",
            )
    return message


def _set_headers(message: EmailMessage, envelope: Envelope) -> None:
    message["From"] = Address(display_name=header_text(envelope.from_name), addr_spec=envelope.from_address)
    message["To"] = Address(display_name=header_text(envelope.to_name), addr_spec=envelope.to_address)
    message["Reply-To"] = Address(addr_spec=envelope.reply_to)
    message["Subject"] = header_text(envelope.subject, 250)
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = f"<{envelope.message_id}>"
    message["In-Reply-To"] = f"<{envelope.root_message_id}>"
    message["References"] = f"<{envelope.root_message_id}>"
    message["Thread-Topic"] = header_text(envelope.subject, 250)
    message["Thread-Index"] = envelope.thread_index
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
