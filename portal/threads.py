"""A family's thread: read it (which marks it read for me only), post to it, follow it live.

Seniors open any thread of their business; basic staff reach only today's families, via
Today → profile → Message. Every view checks access through `threads.access`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from inbound.parse import UnparseableEmail, parse_email

from outbound import live
from outbound.notify import message_posted, note_posted, plan_mentions
from portal.auth import current_staff, requires
from portal.conversation import message_views, parent_states, thread_states
from portal.runtime import db, now, settings
from portal.scope import family_for, thread_for
from portal.security import ATTACHMENT_POLICY
from threads.directory import ensure_thread
from threads.errors import UnknownThread
from threads.models import InboundEmail, Message, Staff, Thread
from threads.posting import NewAttachment, post_message
from threads.pages import messages_after, thread_page
from threads.reading import mark_read, mark_unread

logger = logging.getLogger(__name__)

bp = Blueprint("threads", __name__)

MAX_FILES = 10


@bp.get("/threads/<int:thread_id>")
@requires()
def show(thread_id: int) -> str:
    staff = current_staff()
    thread = thread_for(staff, thread_id)
    before = request.args.get("before", type=int)
    messages = thread_page(db(), thread.id, before_id=before)
    parents, read_up_to = thread_states(db(), thread, thread.family, staff.id)
    marked = bool(messages) and before is None and _mark_read(thread, staff, messages[-1].id, read_up_to)
    page = render_template(
        "thread.html",
        thread=thread,
        family=thread.family,
        messages=message_views(messages, staff, parents),
        parents=parents,
        older=messages[0].id if messages and before is None and thread.message_count > len(messages) else None,
        paging_back=before is not None,
        last_id=thread.last_message_id or 0,
    )
    db().commit()
    if marked:
        live.thread_read(staff.id)
    return page


def _mark_read(thread: Thread, staff: Staff, up_to: int, read_up_to: int | None) -> bool:
    """Move the staff member's read cursor to `up_to`, unless it is known to be there already
    (a view that shows nothing new writes nothing); True when it was moved (or may have been)."""
    if read_up_to is not None and read_up_to >= up_to:
        return False
    mark_read(db(), thread, staff.person, up_to)
    return True


@bp.get("/threads/<int:thread_id>/messages")
@requires(api=True)
def newer(thread_id: int) -> Any:
    """Messages after `after`, rendered; with `read=1` (page visible) they count as read."""
    staff = current_staff()
    thread = thread_for(staff, thread_id)
    after = max(0, request.args.get("after", 0, type=int) or 0)
    messages = messages_after(db(), thread.id, after)
    if not messages:
        return jsonify(html="", last_id=after)
    parents, read_up_to = thread_states(db(), thread, thread.family, staff.id)
    read = request.args.get("read") == "1" and _mark_read(thread, staff, messages[-1].id, read_up_to)
    html = render_template("_messages.html", messages=message_views(messages, staff, parents))
    db().commit()
    if read:
        live.thread_read(staff.id)
    return jsonify(html=html, last_id=messages[-1].id)


@bp.post("/threads/<int:thread_id>/unread")
@requires()
def unread(thread_id: int) -> Response:
    """"Mark as unread" for me only; back to where I came to threads from."""
    staff = current_staff()
    thread = thread_for(staff, thread_id)
    mark_unread(db(), thread, staff)
    db().commit()
    live.thread_read(staff.id)  # my other tabs redraw their dots
    if staff.is_senior:
        return redirect(url_for("inbox.messages"))
    return redirect(url_for("schedule.today"))


@bp.get("/messages/<int:message_id>/email")
@requires()
def full_email(message_id: int) -> Response:
    """The whole text of the email a (truncated) message came from, for staff who may open
    its thread: plain text, never a live page. Other businesses' ids are unknown (404)."""
    staff = current_staff()
    thread_id = db().scalar(select(Message.thread_id).where(Message.id == message_id))
    if thread_id is None:
        raise UnknownThread(f"no message {message_id}")
    thread = thread_for(staff, thread_id)
    raw = db().scalar(
        select(InboundEmail.raw)
        .where(
            InboundEmail.posted_message_id == message_id,
            InboundEmail.business_id == thread.business_id,
            InboundEmail.outcome.in_(("posted", "released")),
        )
        .order_by(InboundEmail.id)
        .limit(1)
    )
    if raw is None:
        raise UnknownThread(f"message {message_id} did not come from a stored email")
    response = Response(_full_text(raw), mimetype="text/plain")
    response.headers["Content-Security-Policy"] = ATTACHMENT_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _full_text(raw: bytes) -> str:
    """The email's text part (or its HTML part's source, shown as text), else its raw bytes."""
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return raw.decode("utf-8", "replace")
    return parsed.text or parsed.html or raw.decode("utf-8", "replace")


@bp.post("/threads/<int:thread_id>/messages")
@requires(api=True)
def post(thread_id: int) -> Any:
    staff = current_staff()
    thread = thread_for(staff, thread_id)
    message = _post(staff, thread)
    return _posted(thread, message)


@bp.get("/families/<int:family_id>/thread")
@requires()
def family_thread(family_id: int) -> Any:
    """The family's conversation; a family without a thread yet gets an empty one to start."""
    staff = current_staff()
    family = family_for(staff, family_id)
    thread = db().scalar(select(Thread.id).where(Thread.family_id == family.id))
    if thread is not None:
        return redirect(url_for("threads.show", thread_id=thread))
    return render_template(
        "thread.html", thread=None, family=family, messages=[], parents=parent_states(db(), None, family),
        older=None, paging_back=False, last_id=0,
    )


@bp.post("/families/<int:family_id>/messages")
@requires(api=True)
def post_to_family(family_id: int) -> Any:
    staff = current_staff()
    family = family_for(staff, family_id)
    thread = ensure_thread(db(), family, settings().mail_domain)
    message = _post(staff, thread)
    return _posted(thread, message)


def _post(staff: Staff, thread: Thread) -> Message:
    files = [_attachment(f) for f in request.files.getlist("files")[:MAX_FILES] if f and f.filename]
    internal = request.form.get("internal") in ("1", "on", "true")
    message = post_message(
        db(), thread, staff, request.form.get("body", ""), files, source="portal", internal=internal, now=now()
    )
    if internal:
        # Mentions are decided in the posting transaction: a note is never without its emails.
        mentions = plan_mentions(db(), settings(), message, thread, now())
        db().commit()
        logger.info("staff %s posted note %s in thread %s (%d mentions)", staff.id, message.id, thread.id, len(mentions))
        note_posted(message.id, mentions)
        return message
    db().commit()
    logger.info("staff %s posted message %s in thread %s", staff.id, message.id, thread.id)
    message_posted(message.id)
    return message


def _posted(thread: Thread, message: Message) -> Any:
    if request.accept_mimetypes.best == "application/json":
        return jsonify(ok=True, id=message.id, thread_id=thread.id)
    return redirect(url_for("threads.show", thread_id=thread.id, _anchor=f"m{message.id}"))


def _attachment(upload: FileStorage) -> NewAttachment:
    name = (upload.filename or "file").replace("\\", "/").rsplit("/", 1)[-1][:200] or "file"
    return NewAttachment(
        filename=name,
        content_type=(upload.mimetype or "application/octet-stream")[:200],
        content=upload.read(),
    )

