"""The parent page: a family's conversation on the web, opened by a signed parent link.

No account and no password: the link is the key (outbound.links signs it, threads.parent_links
decides whether it still opens). The page shows only what parents may see, of their own
family only; opening it moves the contact's read cursor (so no digest follows for what they
saw); the reply box posts as that contact, source `web`, and alerts scheduled staff exactly
like an emailed reply. Every answer sends no referrer (the URL is a credential).
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, g, make_response, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import undefer
from werkzeug.wrappers import Response

from outbound.links import read_parent_token
from outbound.notify import message_posted
from portal.attachments import served_type
from portal.conversation import THUMBNAIL_TYPES
from portal.runtime import db, now, settings
from portal.security import ATTACHMENT_POLICY
from portal.threads import MAX_FILES, _attachment
from threads.cursors import advance_cursor
from threads.email_choice import InvalidChoice, set_email_choice
from threads.errors import EmptyMessage
from threads.models import Attachment, Message, ReadCursor
from threads.pages import PARENT_VISIBLE_KINDS, parent_thread_page
from threads.parent_links import UNSUBSCRIBE_LIFETIME, LINK_LIFETIME, ParentAccess, note_link_used, parent_access
from threads.posting import post_message
from threads.rate_limits import allow

logger = logging.getLogger(__name__)

bp = Blueprint("parents", __name__)

PAGE_SIZE = 30
# Per contact and per client address: generous for a person, small for a script.
VIEWS_PER_MINUTE = 60
POSTS_PER_HOUR = 30
LIMIT_WINDOW_VIEWS = timedelta(minutes=1)
LIMIT_WINDOW_POSTS = timedelta(hours=1)


@bp.after_request
def no_referrer(response: Response) -> Response:
    """The page's URL is its key: never hand it to a linked or embedded site."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Robots-Tag", "noindex")
    return response


def _access(token: str, lifetime: timedelta = LINK_LIFETIME) -> ParentAccess | None:
    read = read_parent_token(settings().secret_key, token)
    if read is None:
        return None
    contact_id, key, signed_at = read
    access = parent_access(db(), contact_id, key, signed_at, now(), lifetime)
    if access is not None:
        g.zone = access.thread.business.timezone
    return access


def _gone() -> tuple[str, int]:
    return render_template("parent_gone.html"), 404


def _limited(buckets: dict[str, int], window: timedelta) -> bool:
    """True when over the limit (the hit is recorded in the caller's transaction otherwise)."""
    return not allow(db(), buckets, window, now())


def _open(token: str, limit: tuple[str, int, timedelta] | None = None) -> ParentAccess:
    """The contact a link speaks for, or the answer that ends the request: the friendly
    404 for a wrong or expired link, 429 over the contact's `limit` (bucket, count, window).
    What the checks wrote (a limit's hit) is committed either way."""
    access = _access(token)
    if access is None:
        db().commit()
        abort(make_response(_gone()))
    if limit is not None:
        bucket, count, window = limit
        if _limited({f"{bucket}:contact:{access.contact.id}": count}, window):
            db().commit()
            abort(429)
    return access


@bp.get("/p/<token>")
def show(token: str) -> Any:
    client = {f"parent-view:client:{request.remote_addr}": VIEWS_PER_MINUTE * 5}
    access = _access(token)
    # One check for the client's and the contact's limits; a wrong link counts for its client.
    buckets = client if access is None else {**client, f"parent-view:contact:{access.contact.id}": VIEWS_PER_MINUTE}
    if _limited(buckets, LIMIT_WINDOW_VIEWS):
        db().commit()
        abort(429)
    if access is None:
        db().commit()
        return _gone()
    before = request.args.get("before", type=int)
    messages = parent_thread_page(db(), access.thread.id, before_id=before, limit=PAGE_SIZE)
    if messages and before is None and messages[-1].id > access.read_up_to:
        # Rule 2 for the web: what the page showed is read (so no digest follows for it).
        advance_cursor(db(), ReadCursor, access.thread.id, access.contact.person, messages[-1].id)
    note_link_used(db(), access, now())
    db().commit()
    older = messages[0].id if len(messages) == PAGE_SIZE else None
    return render_template(
        "parent_thread.html", token=token, access=access, messages=messages, older=older,
        paging_back=before is not None, thumbnail_types=THUMBNAIL_TYPES,
    )


@bp.post("/p/<token>")
def reply(token: str) -> Any:
    access = _open(token, ("parent-post", POSTS_PER_HOUR, LIMIT_WINDOW_POSTS))
    files = [_attachment(f) for f in request.files.getlist("files")[:MAX_FILES] if f and f.filename]
    try:
        message = post_message(db(), access.thread, access.contact, request.form.get("body", ""), files, source="web", now=now())
    except EmptyMessage:
        db().rollback()
        return redirect(url_for("parents.show", token=token))
    note_link_used(db(), access, now())
    db().commit()
    logger.info("contact %s posted message %s from the parent page", access.contact.id, message.id)
    message_posted(message.id)
    return redirect(url_for("parents.show", token=token, _anchor=f"m{message.id}"))


@bp.get("/p/<token>/files/<int:attachment_id>")
def attachment(token: str, attachment_id: int) -> Any:
    access = _open(token)
    found = db().scalar(
        select(Attachment)
        .options(undefer(Attachment.content))
        .join(Message, Message.id == Attachment.message_id)
        .where(
            Attachment.id == attachment_id,
            Message.thread_id == access.thread.id,
            Message.author_type.in_(PARENT_VISIBLE_KINDS),
        )
    )
    if found is None:
        abort(404)
    mimetype = served_type(found.content_type)
    response = send_file(
        io.BytesIO(found.content),
        mimetype=mimetype,
        as_attachment=mimetype not in THUMBNAIL_TYPES,
        download_name=found.filename or "attachment",
        etag=found.sha256,
        max_age=0,
        conditional=True,
    )
    response.headers["Content-Security-Policy"] = ATTACHMENT_POLICY
    return response


@bp.get("/p/<token>/emails")
def choice(token: str) -> Any:
    """Rule 7: "Change how often we email you" (every email links here)."""
    access = _open(token)
    note_link_used(db(), access, now())
    db().commit()
    return render_template("parent_emails.html", token=token, access=access, saved=request.args.get("saved"))


@bp.post("/p/<token>/emails")
def set_choice(token: str) -> Any:
    access = _open(token, ("parent-post", POSTS_PER_HOUR, LIMIT_WINDOW_POSTS))
    minute = _minute(request.form.get("time", ""))
    try:
        set_email_choice(db(), access.contact, request.form.get("choice", ""), now(), minute)
    except InvalidChoice:
        db().rollback()
        abort(400)
    note_link_used(db(), access, now())
    db().commit()
    logger.info("contact %s chose %s emails", access.contact.id, access.contact.email_choice)
    return redirect(url_for("parents.choice", token=token, saved=1))


def _minute(value: str) -> int | None:
    """"18:30" → 1110; anything else → None."""
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(hours) <= 2 and len(minutes) == 2):
        return None
    total = int(hours) * 60 + int(minutes)
    return total if int(hours) < 24 and int(minutes) < 60 else None


ONE_CLICK = "List-Unsubscribe=One-Click"


@bp.get("/p/<token>/unsubscribe")
def unsubscribe_confirm(token: str) -> Any:
    """A GET never unsubscribes: link scanners and previews open URLs (RFC 8058 section 3.2)."""
    access = _access(token, UNSUBSCRIBE_LIFETIME)
    if access is None:
        db().commit()
        return _gone()
    return render_template("parent_unsubscribe.html", token=token, access=access, done=request.args.get("done"), one_click=ONE_CLICK)


@bp.post("/p/<token>/unsubscribe")
def one_click(token: str) -> Any:
    """RFC 8058: a POST whose body is `List-Unsubscribe=One-Click` pauses this contact's emails.

    Exempt from CSRF (create_app): the mail provider posts it without cookies; the signed
    token in the URL is the credential, and the only effect is pausing this one contact.
    """
    if request.form.get("List-Unsubscribe") != "One-Click":
        abort(400)
    access = _access(token, UNSUBSCRIBE_LIFETIME)
    if access is None:
        db().commit()
        return _gone()
    if _limited({f"parent-unsubscribe:contact:{access.contact.id}": POSTS_PER_HOUR}, LIMIT_WINDOW_POSTS):
        db().commit()
        abort(429)
    if access.contact.email_choice != "paused":
        set_email_choice(db(), access.contact, "paused", now())
    db().commit()
    logger.info("contact %s unsubscribed (one-click)", access.contact.id)
    if request.accept_mimetypes.accept_html and request.form.get("from_page"):
        return redirect(url_for("parents.unsubscribe_confirm", token=token, done=1))
    return "", 200
