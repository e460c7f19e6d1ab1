"""Template helpers shared by every screen: time filters and what the navigation shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, g, request
from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, ScalarSelect, and_, func, select

from portal import timefmt
from portal.runtime import db, now, settings
from threads.models import InboundEmail, StaffSession


def _zone() -> str:
    staff = g.get("staff")
    # A parent page has no staff member: it sets `g.zone` to the business's zone.
    return staff.business.timezone if staff is not None else g.get("zone", "UTC")


def held_count(business_id: int) -> int:
    """Emails of the business waiting in quarantine (the header's count; live-refreshed).

    A GET changes no quarantine, so it uses the count read with the signed-in session at the
    start of the request (`portal.auth.load_signed_in_staff`) instead of asking again.
    """
    counted = g.get("held_at_start")
    if counted is not None and counted[0] == business_id and request.method in ("GET", "HEAD"):
        return counted[1]
    return db().scalar(select(func.count()).select_from(InboundEmail).where(_held_in(business_id))) or 0


def held_count_of_session_business() -> ScalarSelect[int]:
    """`held_count` as a column beside a `staff_sessions` row: its business's held emails."""
    return select(func.count()).select_from(InboundEmail).where(_held_in(StaffSession.business_id)).scalar_subquery()


def _held_in(business_id: Any) -> ColumnElement[bool]:
    return and_(InboundEmail.business_id == business_id, InboundEmail.outcome == "quarantined")


def navigation() -> dict[str, Any]:
    """What the header needs: tabs by role, and the quarantine count for seniors."""
    staff = g.get("staff")
    held = held_count(staff.business_id) if staff is not None and staff.is_senior else 0
    return {
        "staff": staff,
        "held_count": held,
        "dev_mailbox": settings().uses_maildir and staff is not None and staff.is_senior,
    }


def install(app: Flask) -> None:
    app.context_processor(navigation)

    @app.template_filter("timetag")
    def timetag(moment: datetime | None) -> Markup:
        """`<time>` with the instant, a full tooltip and "2 min ago" (portal.js keeps it fresh)."""
        if moment is None:
            return Markup("")
        zone = _zone()
        # An f-string of escaped parts: `Markup.format` cost more than the times themselves
        # on pages that list 50 of them.
        iso, full, relative = moment.isoformat(), timefmt.full_time(moment, zone), timefmt.relative_time(moment, zone, now())
        return Markup(f'<time datetime="{escape(iso)}" title="{escape(full)}" data-relative>{escape(relative)}</time>')

    @app.template_filter("fulltime")
    def fulltime(moment: datetime | None) -> str:
        return timefmt.full_time(moment, _zone()) if moment else ""

    @app.template_filter("timerange")
    def timerange(bounds: tuple[datetime, datetime]) -> str:
        return timefmt.time_range(bounds[0], bounds[1], _zone())

    @app.template_filter("filesize")
    def filesize(size: int) -> str:
        for unit in ("bytes", "KB", "MB"):
            if size < 1024 or unit == "MB":
                return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
            size /= 1024  # type: ignore[assignment]
        return f"{size} bytes"
