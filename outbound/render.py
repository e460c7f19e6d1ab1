"""Rendering: plain data in, a finished email (`email.message.Message`) out. Pure: no database, no clock.

Every email is multipart/alternative (text for any client, HTML that reads on a phone),
carries the thread's reply address in `Reply-To`, its own `Message-ID`, `In-Reply-To` and
`References` to the thread's root id (clients group a family's emails), Outlook's
`Thread-Topic`/`Thread-Index`, and the RFC 3834 markers that stop auto-replies. The
`From` is always Pawpost's notifications address: a staff member's own domain would fail
DMARC from our servers, so their name only appears as the display name.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from functools import lru_cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# Anything below space (CR, LF, TAB, NUL…) and DEL: never allowed into a header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
MAX_HEADER_TEXT = 200


class _WirePolicy(Compat32):
    """compat32 with CRLF line ends (smtplib does not convert them for bytes), and short
    plain-ASCII header values written as they are: compat32 runs every header through
    `email.header.Header`'s folding, which was a third of the cost of a digest. Anything
    longer, non-ASCII or a `Header` still takes that path."""

    def _fold(self, name: str, value: object, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and len(name) + len(value) + 2 <= self.max_line_length
            and value.isascii()
            and "\n" not in value
            and "\r" not in value
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


_WIRE = _WirePolicy(linesep="\r\n")


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
    url: str | None = None  # the signed link: the plain-text part shows it instead of the picture


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
    by_parent: bool = False  # written by a contact (a co-parent), not the team

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
    # Owed messages beyond what one digest holds: they follow in the next digest.
    more_messages: int = 0
    # The contact's parent link: the whole conversation on the web (None: not offered).
    conversation_url: str | None = None
    choice_url: str | None = None  # "Change how often we email you" (rule 7)
    # RFC 2369/8058 headers: the https one-click URL, the mailto address, and List-Id.
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    list_id: str | None = None

    @property
    def intro(self) -> str:
        """Who wrote what this email holds: the team, a co-parent by name, or both."""
        count = len(self.messages)
        parents = {m.author_name for m in self.messages if m.by_parent}
        if parents and len(parents) == 1 and all(m.by_parent for m in self.messages):
            return f"{parents.pop()} wrote to {self.business_name}:"
        if not parents:
            if count == 1:
                return f"There is a new message from {self.business_name}:"
            return f"There are {count} new messages from {self.business_name}:"
        return f"There are {count} new messages in your conversation with {self.business_name}:"


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
class MentionContent:
    business_name: str
    family_name: str
    author_name: str
    note: ShownMessage
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


def family_phrase(name: str) -> str:
    """"the Johnson family" from "Johnson" or "Johnson family" (families are named either way)."""
    name = " ".join(name.split())
    return f"the {name}" if name.lower().endswith(" family") else f"the {name} family"


def thread_subject(business_name: str, family_name: str, pet_names: str) -> str:
    """The subject of every email about one thread: stable, so clients keep it together."""
    about = f"{family_name} ({pet_names})" if pet_names else family_name
    return header_text(f"{business_name}: {about}")


def local_time(moment: datetime, timezone: str) -> str:
    """How a message's time reads to someone at the business, e.g. "Tue 3 Jun, 2:05 PM"."""
    local = moment.astimezone(ZoneInfo(timezone))
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')}, {hour}:{local.strftime('%M %p')}"


def render_digest(envelope: Envelope, content: DigestContent) -> Message:
    """The parent notification: every message they have not read, in one email."""
    context = {"c": content, "images": [i for m in content.messages for i in m.images]}
    message = _build(envelope, "digest", context)
    if content.unsubscribe_url and content.unsubscribe_mailto:
        message["List-Unsubscribe"] = f"<{content.unsubscribe_url}>, <mailto:{_address(content.unsubscribe_mailto)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if content.list_id:
        message["List-Id"] = content.list_id
    return message


def render_alert(envelope: Envelope, content: AlertContent) -> Message:
    """A staff alert: a parent wrote in a thread of a family the staff member sees today."""
    return _build(envelope, "alert", {"c": content, "images": list(content.message.images)})


def render_mention(envelope: Envelope, content: MentionContent) -> Message:
    """To a staff member named in an internal note: the note and a link to the thread.

    No Reply-To and no thread headers: an answer by email would land in the family's
    thread, where parents read it, so the email says to answer in the portal."""
    return _build(envelope, "mention", {"c": content, "images": list(content.note.images)})


def render_escalation(envelope: Envelope, content: EscalationContent) -> Message:
    """To senior staff: parent messages nobody on the team has read for a while."""
    context = {"c": content, "images": [i for m in content.messages for i in m.images]}
    return _build(envelope, "escalation", context)


def render_invitation(envelope: Envelope, content: AccountContent) -> Message:
    """To a new staff member: a single-use link to choose a password and sign in."""
    return _build(envelope, "invite", {"c": content, "images": []})


def render_password_reset(envelope: Envelope, content: AccountContent) -> Message:
    """To a staff member who asked: a single-use link, valid an hour, to choose a new password."""
    return _build(envelope, "password_reset", {"c": content, "images": []})


def render_webhook_disabled(envelope: Envelope, content: EndpointDisabledContent) -> Message:
    """To each admin: a webhook endpoint was disabled (410, or 3 days of failures), with a link to its log."""
    return _build(envelope, "webhook_disabled", {"c": content, "images": []})


def to_bytes(message: Message) -> bytes:
    """The email as it goes on the wire (CRLF line ends)."""
    return message.as_bytes(policy=_WIRE)


@dataclass(frozen=True)
class AccountContent:
    """An invitation or a password reset: who, for which business, the link and its expiry."""

    business_name: str
    recipient_name: str
    link: str
    expires: str
    role: str = ""
    invited_by: str = ""


@dataclass(frozen=True)
class EndpointDisabledContent:
    """Which endpoint stopped, why and when, and the link to its page in the portal."""

    business_name: str
    recipient_name: str
    endpoint_url: str
    reason: str
    when: str
    link: str


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("outbound", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code: compiled once, never re-checked on disk (ten
        # stat() calls per email otherwise).
        auto_reload=False,
    )
    env.filters["the_family"] = family_phrase
    return env


def _build(envelope: Envelope, name: str, context: dict[str, object]) -> Message:
    env = _templates()
    text = env.get_template(f"{name}.txt").render(context)
    html = env.get_template(f"{name}.html").render(context)
    html_part: Message = _text_part(html, "html")
    images = context.get("images") or []
    if images:
        related = MIMEMultipart("related", boundary=_boundary())
        related.attach(html_part)
        for image in images:  # type: ignore[attr-defined]
            maintype, _, subtype = image.content_type.partition("/")
            part = MIMEBase(maintype, subtype or "octet-stream")
            part.set_payload(image.content)
            encoders.encode_base64(part)
            part["Content-ID"] = f"<{_address(image.content_id)}>"
            part.add_header("Content-Disposition", "inline", filename=("utf-8", "", header_text(image.filename, 150)))
            related.attach(part)
        html_part = related
    message = MIMEMultipart("alternative", boundary=_boundary())
    message.attach(_text_part(text, "plain"))
    message.attach(html_part)
    _set_headers(message, envelope)
    return message


def _text_part(text: str, subtype: str) -> Message:
    """UTF-8 text, quoted-printable, encoded by `binascii` (C) rather than `email.quoprimime`."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    part.set_payload(binascii.b2a_qp(lines.encode("utf-8")).decode("ascii"))
    return part


def _boundary() -> str:
    """A boundary whose delimiter line cannot occur in a part: quoted-printable writes "="
    as "=3D" and base64 has no "-". Choosing it here spares the generator its search of
    the whole email (with a regular expression compiled anew for each email)."""
    return f"==pawpost_{secrets.token_hex(12)}=="


def _address(value: str) -> str:
    """An addr-spec as stored (lowercased, validated on the way in); refuse anything odd."""
    if not value or _CONTROL.search(value) or any(c in value for c in ' <>,;"'):
        raise ValueError(f"not an email address: {value!r}")
    return value


def _named(name: str, address: str) -> str:
    """`"Display Name" <addr>`, the name RFC 2047-encoded when it is not plain ASCII."""
    return formataddr((header_text(name), _address(address)), charset="utf-8")


def _text_header(value: str) -> str | Header:
    text = header_text(value, 250)
    return text if text.isascii() else Header(text, "utf-8")


def _set_headers(message: Message, envelope: Envelope) -> None:
    # The compat32 classes keep headers as given: ~10x faster to build than the modern
    # policy's parsed header objects, and `header_text`/`_address` already did the checks.
    message["From"] = _named(envelope.from_name, envelope.from_address)
    message["To"] = _named(envelope.to_name, envelope.to_address)
    if envelope.reply_to:  # account emails belong to no thread: nothing to reply to
        message["Reply-To"] = _address(envelope.reply_to)
    message["Subject"] = _text_header(envelope.subject)
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = f"<{_address(envelope.message_id)}>"
    if envelope.root_message_id:
        message["In-Reply-To"] = f"<{_address(envelope.root_message_id)}>"
        message["References"] = f"<{_address(envelope.root_message_id)}>"
        message["Thread-Topic"] = _text_header(envelope.subject)
        message["Thread-Index"] = envelope.thread_index
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
