"""Rotating a thread's reply address (admins), after a confirmation saying what stops working.

The old token is retired (`threads.addresses.rotate_reply_token`): mail to it is refused with
`550 5.1.1` rather than misrouted, and everything Pawpost sends afterwards carries the new one.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, settings
from portal.scope import thread_for
from threads.addresses import reply_address, rotate_reply_token

logger = logging.getLogger(__name__)

bp = Blueprint("reply_address", __name__)


@bp.get("/threads/<int:thread_id>/reply-address")
@requires("admin")
def confirm(thread_id: int) -> str:
    thread = thread_for(current_staff(), thread_id)
    return render_template("rotate_address.html", thread=thread, address=reply_address(thread, settings().reply_domain))


@bp.post("/threads/<int:thread_id>/reply-address")
@requires("admin")
def rotate(thread_id: int) -> Response:
    thread = thread_for(current_staff(), thread_id)
    rotate_reply_token(db(), thread)
    note("thread.reply_address.rotate", f"Rotated the reply address of {thread.family.name}'s thread", family_id=thread.family_id)
    db().commit()
    logger.info("staff %s rotated the reply address of thread %s", current_staff().id, thread.id)
    flash(f"New reply address: {reply_address(thread, settings().reply_domain)}. The old one now refuses mail.")
    return redirect(url_for("threads.show", thread_id=thread.id))
