"""Response headers that keep the portal's pages inert even if some text slipped through.

The Content-Security-Policy allows no inline script or style at all: every script and
stylesheet is a file served from the package, and email HTML is sanitised before display.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Attachments are never pages: even a mislabelled HTML file cannot run script.
ATTACHMENT_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.mimetype in ("text/html", "application/json"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def install(app: Flask) -> None:
    app.after_request(add_security_headers)
