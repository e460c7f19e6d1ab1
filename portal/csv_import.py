"""CSV import (admins): download a template, preview every row's problems, then apply.

The preview checks the whole file and writes nothing; "Import" checks it again and writes it
in one transaction, or nothing when any row has a problem. The file travels back with the
preview page (as text in the form), so applying imports exactly what was previewed.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, settings
from threads.csv_import import import_csv, template

logger = logging.getLogger(__name__)

bp = Blueprint("csv_import", __name__)

KINDS = ("families", "appointments")
MAX_CSV_BYTES = 10 * 1024 * 1024


@bp.get("/import")
@requires("admin")
def index() -> str:
    return render_template("csv_import.html", kind=request.args.get("kind", "families"), report=None, text="")


@bp.get("/import/<kind>.csv")
@requires("admin")
def download_template(kind: str) -> Response:
    if kind not in KINDS:
        return Response("no such template\n", 404, mimetype="text/plain")
    return Response(
        template(kind), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="pawpost-{kind}.csv"'}
    )


@bp.post("/import")
@requires("admin")
def run() -> Any:
    kind = request.form.get("kind", "")
    if kind not in KINDS:
        return render_template("csv_import.html", kind="families", report=None, text="", error="Choose what the file holds."), 400
    upload = request.files.get("file")
    raw = upload.read(MAX_CSV_BYTES + 1) if upload and upload.filename else request.form.get("text", "").encode()
    if not raw or len(raw) > MAX_CSV_BYTES:
        error = "Choose a CSV file." if not raw else "The file is larger than 10 MB: split it."
        return render_template("csv_import.html", kind=kind, report=None, text="", error=error), 400
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return render_template("csv_import.html", kind=kind, report=None, text="", error="Save the file as CSV UTF-8."), 400
    apply = request.form.get("action") == "apply"
    report = import_csv(db(), current_staff().business, kind, text, mail_domain=settings().mail_domain, apply=apply)
    if apply and not report.problems:
        note(f"import.{kind}", f"Imported {report.rows} {kind} row(s) from CSV", after={"created": report.created, "updated": report.updated})
        db().commit()
        logger.info("staff %s imported %d %s row(s) from CSV", current_staff().id, report.rows, kind)
        flash(f"Imported {report.rows} row(s): created {_counts(report.created)}, updated {_counts(report.updated)}.")
        return redirect(url_for("csv_import.index", kind=kind))
    db().rollback()
    return render_template("csv_import.html", kind=kind, report=report, text=text), 400 if report.problems else 200


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "nothing"
