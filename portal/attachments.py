"""Serving attachments: only to staff who may open the thread, never as a live page.

Pictures of safe raster types are shown inline (thumbnails); everything else downloads
(`Content-Disposition: attachment`). A sandboxing CSP and `nosniff` ride along either way.
"""

from __future__ import annotations

import io
import re

from flask import Blueprint, send_file
from sqlalchemy import select
from sqlalchemy.orm import undefer
from werkzeug.wrappers import Response

from portal.auth import current_staff, requires
from portal.conversation import THUMBNAIL_TYPES
from outbound.links import verify_attachment_token
from portal.runtime import db, now, settings
from portal.security import ATTACHMENT_POLICY
from threads.access import ensure_can_access_thread
from threads.errors import UnknownThread
from threads.models import Attachment, Message, Thread

bp = Blueprint("attachments", __name__)

_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
# Types a browser would render as a document; they are always sent as downloads.
_ACTIVE_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/javascript", "application/javascript"}
)


def served_type(content_type: str) -> str:
    """The stored type when well-formed, else a neutral binary type."""
    value = content_type.split(";", 1)[0].strip().lower()
    return value if _MIME.match(value) else "application/octet-stream"


@bp.get("/attachments/<int:attachment_id>")
@requires()
def download(attachment_id: int) -> Response:
    staff = current_staff()
    found = db().execute(
        select(Attachment, Thread)
        .options(undefer(Attachment.content))
        .join(Message, Message.id == Attachment.message_id)
        .join(Thread, Thread.id == Message.thread_id)
        .where(Attachment.id == attachment_id, Thread.business_id == staff.business_id)
    ).first()
    if found is None:
        raise UnknownThread(f"no attachment {attachment_id} in business {staff.business_id}")
    attachment, thread = found
    ensure_can_access_thread(db(), staff, thread, now())
    return _send(attachment)


@bp.get("/attachments/<int:attachment_id>/<token>")
def download_by_link(attachment_id: int, token: str) -> Response:
    """The signed link in a parent's digest: parents have no sign-in, the signed token is the key."""
    if not verify_attachment_token(settings().secret_key, attachment_id, token, now=now()):
        raise UnknownThread(f"bad link for attachment {attachment_id}")
    attachment = db().scalar(select(Attachment).options(undefer(Attachment.content)).where(Attachment.id == attachment_id))
    if attachment is None:
        raise UnknownThread(f"no attachment {attachment_id}")
    return _send(attachment)


def _send(attachment: Attachment) -> Response:
    """Pictures inline, everything else as a download, always under a sandboxing CSP."""
    mimetype = served_type(attachment.content_type)
    inline = mimetype in THUMBNAIL_TYPES and mimetype not in _ACTIVE_TYPES
    response = send_file(
        io.BytesIO(attachment.content),
        mimetype=mimetype,
        as_attachment=not inline,
        download_name=attachment.filename or "attachment",
        etag=attachment.sha256,
        max_age=0,
        conditional=True,
    )
    response.headers["Content-Security-Policy"] = ATTACHMENT_POLICY
    response.headers["Cache-Control"] = "private, no-cache"
    return response
