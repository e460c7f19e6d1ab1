"""The portal's one table from typed errors to HTTP answers.

Ids of another business answer 404, exactly like ids that do not exist, so nothing tells
one tenant what another holds. Within a business, what a basic staff member may not see
answers 403.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from threads.errors import AccessDenied, EmptyMessage, PawpostError, UnknownFamily, UnknownStaff, UnknownThread

logger = logging.getLogger(__name__)

STATUS_FOR_ERROR: dict[type[PawpostError], tuple[int, str]] = {
    AccessDenied: (403, "You can only open families you are scheduled with today."),
    UnknownThread: (404, "There is no such conversation."),
    UnknownFamily: (404, "There is no such family."),
    UnknownStaff: (404, "There is no such staff member."),
    EmptyMessage: (400, "Write something or attach a file."),
}

TITLES = {
    400: "That request was not understood",
    401: "Please sign in",
    403: "Not yours to open",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    429: "Too many attempts",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def answer(status: int, detail: str) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error=detail), status
    return render_template("error.html", status=status, title=TITLES.get(status, "Error"), detail=detail), status


def install(app: Flask) -> None:
    @app.errorhandler(PawpostError)
    def pawpost_error(error: PawpostError) -> tuple[Response | str, int]:
        for kind, (status, detail) in STATUS_FOR_ERROR.items():
            if isinstance(error, kind):
                logger.info("%s %s: %s", request.method, request.path, error)
                return answer(status, detail)
        raise error

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[Response | str, int]:
        logger.warning("CSRF refusal on %s %s: %s", request.method, request.path, error.description)
        return answer(400, "This form expired or did not come from Pawpost. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response | str, int] | HTTPException:
        if error.code is None or error.code < 400:
            return error
        if request.path.startswith("/api/v1/"):
            from portal.api import problem_for_http

            return problem_for_http(error), error.code
        return answer(error.code, error.description or "")
