"""The development mailbox: the emails Pawpost wrote to the local Maildir, and replying as anyone.

Only mounted while outbound mail goes to a Maildir (the embedded default). "Reply as this
person" sends a real email through Pawpost's own SMTP server, so one developer can play
parent, basic and senior staff on one machine. Only emails about threads of the viewer's
business are listed.
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
import mailbox
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from outbound.transport import DeliveryError, send_raw
from portal.auth import current_staff, requires
from portal.runtime import db, settings
from portal.sanitize import clean_email_html
from threads.addresses import parse_reply_address, thread_for_token

logger = logging.getLogger(__name__)

bp = Blueprint("devmail", __name__, url_prefix="/dev/mailbox")

LIST_LIMIT = 200
_KEY = re.compile(r"^[A-Za-z0-9._,:=-]{1,200}$")


@dataclass(frozen=True)
class DevEmail:
    key: str
    sent_at: datetime
    sender: str
    recipients: tuple[str, ...]
    reply_to: str
    subject: str
    message_id: str
    references: str
    text: str
    html: Markup | None
    attachments: tuple[str, ...]


@bp.before_request
def only_with_maildir() -> None:
    if not settings().uses_maildir:
        abort(404)


def _mailbox() -> mailbox.Maildir | None:
    path = settings().maildir_path
    if path is None or not Path(path).is_dir():
        return None
    return mailbox.Maildir(path, factory=None, create=False)


def _read(key: str, message: mailbox.MaildirMessage) -> DevEmail:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text_part = parsed.get_body(("plain",))
    html_part = parsed.get_body(("html",))
    date = parsed.get("Date")
    try:
        sent_at = email.utils.parsedate_to_datetime(str(date)) if date else None
    except (TypeError, ValueError):
        sent_at = None
    if sent_at is None or sent_at.tzinfo is None:
        sent_at = datetime.fromtimestamp(message.get_date(), UTC)
    return DevEmail(
        key=key,
        sent_at=sent_at,
        sender=str(parsed.get("From", "")),
        recipients=tuple(addr for _name, addr in email.utils.getaddresses([str(v) for v in parsed.get_all("To", [])])),
        reply_to=email.utils.parseaddr(str(parsed.get("Reply-To", "")))[1],
        subject=str(parsed.get("Subject", "")),
        message_id=str(parsed.get("Message-ID", "")).strip(),
        references=str(parsed.get("References", "")).strip(),
        text=text_part.get_content() if text_part is not None else "",
        html=clean_email_html(html_part.get_content()) if html_part is not None else None,
        attachments=tuple(part.get_filename() or "attachment" for part in parsed.iter_attachments()),
    )


def _mine(item: DevEmail, business_id: int) -> bool:
    """Whether the email is about a thread of this business (its Reply-To names the thread)."""
    token = parse_reply_address(item.reply_to, settings().reply_domain) if item.reply_to else None
    thread = thread_for_token(db(), token) if token else None
    return thread is not None and thread.business_id == business_id


def _emails(business_id: int) -> list[DevEmail]:
    box = _mailbox()
    if box is None:
        return []
    items = []
    for key in box.keys():
        try:
            items.append(_read(key, box[key]))
        except (KeyError, FileNotFoundError):
            continue  # moved or removed while listing
    items.sort(key=lambda e: e.sent_at, reverse=True)
    return [e for e in items[: LIST_LIMIT * 2] if _mine(e, business_id)][:LIST_LIMIT]


def _one(key: str, business_id: int) -> DevEmail:
    box = _mailbox()
    if box is None or not _KEY.match(key):
        abort(404)
    try:
        item = _read(key, box[key])
    except (KeyError, FileNotFoundError):
        abort(404)
    if not _mine(item, business_id):
        abort(404)
    return item


@bp.get("")
@requires("senior")
def index() -> str:
    return render_template("devmail_list.html", emails=_emails(current_staff().business_id))


@bp.get("/<key>")
@requires("senior")
def show(key: str) -> str:
    item = _one(key, current_staff().business_id)
    return render_template("devmail_show.html", item=item)


@bp.post("/<key>/reply")
@requires("senior")
def reply(key: str) -> Any:
    item = _one(key, current_staff().business_id)
    sender = request.form.get("from", "")
    body = request.form.get("body", "").strip()
    if sender not in item.recipients or not body or not item.reply_to:
        flash("Write a reply and choose one of the email's recipients to send it as.", "error")
        return redirect(url_for("devmail.show", key=key))
    raw = _reply_bytes(item, sender, body)
    # End the read transaction first: on SQLite it holds the lock the SMTP server needs to post.
    db().rollback()
    host, port = settings().smtp_listen
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        send_raw(host, port, sender, [item.reply_to], raw)
    except (OSError, DeliveryError) as error:
        logger.warning("dev mailbox reply to %s:%s failed: %s", host, port, error)
        flash(f"The SMTP server at {host}:{port} did not take the reply: {error}", "error")
        return redirect(url_for("devmail.show", key=key))
    flash(f"Sent as {sender} through SMTP {host}:{port}.", "ok")
    return redirect(url_for("devmail.index"))


def _reply_bytes(item: DevEmail, sender: str, body: str) -> bytes:
    """A reply as a mail client writes one: threading headers and the original quoted below."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = item.reply_to
    message["Subject"] = item.subject if item.subject.lower().startswith("re:") else f"Re: {item.subject}"
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    message["Message-ID"] = email.utils.make_msgid(domain="devmail.localhost")
    if item.message_id:
        message["In-Reply-To"] = item.message_id
        message["References"] = f"{item.references} {item.message_id}".strip()
    quoted = "\n".join(f"> {line}" if line else ">" for line in item.text.splitlines())
    written = email.utils.format_datetime(item.sent_at)
    message.set_content(f"{body}\n\nOn {written}, {item.sender} wrote:\n{quoted}\n")
    return message.as_bytes()
