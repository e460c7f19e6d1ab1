"""`GET /healthz`: 200 "ok" while the database answers, for load balancers and compose."""

from __future__ import annotations

import logging

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.runtime import db

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[str, int, dict[str, str]]:
    try:
        db().execute(text("SELECT 1"))
        db().rollback()
    except SQLAlchemyError as error:
        logger.warning("health check: database unavailable: %s", error.__class__.__name__)
        return "database unavailable\n", 503, {"Content-Type": "text/plain; charset=utf-8"}
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}
