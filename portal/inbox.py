"""The Messages tab: every thread of the business for senior staff, and finding a family.

The page is server-rendered; `static/portal.js` asks `/api/unread` when the live stream
(`portal.live`) hints that something changed, and swaps in `/messages/rows` when the inbox
changed, so dots, order and the quarantine count update without a reload.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select

from portal.auth import current_staff, home_url, requires
from portal.runtime import db, tab_unread
from portal.views import held_count
from threads.directory import search_families
from threads.models import Thread
from threads.reading import inbox, unread_thread_ids

bp = Blueprint("inbox", __name__)

PAGE_SIZE = 50
MAX_POLLED_IDS = 200
# One letter matches a large share of any directory; the search starts at the second.
MIN_SEARCH_CHARS = 2


@bp.get("/")
def home() -> Any:
    if g.staff is None:
        return redirect(url_for("auth.sign_in"))
    return redirect(home_url(g.staff))


def _page() -> int:
    return max(0, min(request.args.get("page", 0, type=int) or 0, 10_000))


def _inbox_version(business_id: int) -> str:
    """Changes whenever any thread of the business gets a message (indexed: one B-tree probe)."""
    latest = db().scalar(select(func.max(Thread.last_message_at)).where(Thread.business_id == business_id))
    return latest.isoformat() if latest else ""


@bp.get("/messages")
@requires("senior")
def messages() -> str:
    staff = current_staff()
    page = _page()
    query = request.args.get("q", "").strip()
    rows = inbox(db(), staff, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    matches = search_families(db(), staff.business_id, query) if len(query) >= MIN_SEARCH_CHARS else []
    return render_template(
        "inbox.html",
        rows=rows,
        page=page,
        has_more=len(rows) == PAGE_SIZE,
        query=query,
        matches=matches,
        version=_inbox_version(staff.business_id),
        tab_unread=any(r.unread for r in rows) or tab_unread(staff),
    )


@bp.get("/messages/rows")
@requires("senior", api=True)
def rows() -> str:
    """The first page of inbox rows as an HTML fragment, for the live refresh."""
    staff = current_staff()
    return render_template("_inbox_rows.html", rows=inbox(db(), staff, limit=PAGE_SIZE))


@bp.get("/api/unread")
@requires("senior", api=True)
def unread() -> Any:
    """The tab dot, which of the given threads are unread for me, and the inbox version."""
    staff = current_staff()
    ids = [int(part) for part in request.args.get("ids", "").split(",") if part.isdigit()][:MAX_POLLED_IDS]
    return jsonify(
        tab=tab_unread(staff),
        unread=sorted(unread_thread_ids(db(), staff, ids)),
        version=_inbox_version(staff.business_id),
        held=held_count(staff.business_id),
    )


@bp.get("/api/search")
@requires("senior", api=True)
def search() -> Any:
    """Families by a parent's or pet's name, as the search box types."""
    staff = current_staff()
    query = request.args.get("q", "")[:100]
    if len(query.strip()) < MIN_SEARCH_CHARS:
        return jsonify(query=query, results=[])
    results = [
        {
            "family_id": m.family_id,
            "family": m.family_name,
            "contacts": list(m.contact_names),
            "pets": list(m.pet_names),
            "url": url_for("threads.family_thread", family_id=m.family_id),
        }
        for m in search_families(db(), staff.business_id, query, limit=8)
    ]
    return jsonify(query=query, results=results)
