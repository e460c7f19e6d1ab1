"""Message search: seniors across every thread, basic staff within today's families (rule 5).

The matched words are highlighted by escaping every piece of the snippet and wrapping only
the matching pieces in <mark>: nothing a parent wrote is ever markup.
"""

from __future__ import annotations

import re

from flask import Blueprint, render_template, request
from markupsafe import Markup, escape

from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.search import MAX_RESULTS, search_messages, search_terms, term_pattern

bp = Blueprint("search", __name__)

MAX_QUERY_CHARS = 200


@bp.get("/search")
@requires()
def messages() -> str:
    staff = current_staff()
    query = (request.args.get("q") or "")[:MAX_QUERY_CHARS].strip()
    hits = search_messages(db(), staff, query, now()) if query else []
    terms = search_terms(query)
    pattern = term_pattern(terms) if terms else None
    results = [(hit, highlight(hit.snippet, pattern)) for hit in hits]
    db().commit()
    return render_template("search.html", q=query, results=results, searched=bool(query), limit=MAX_RESULTS)


def highlight(text: str, pattern: re.Pattern[str] | None) -> Markup:
    """`text` escaped, its matching words in <mark>."""
    if pattern is None:
        return Markup(escape(text))
    pieces: list[str] = []
    at = 0
    for match in pattern.finditer(text):
        pieces.append(str(escape(text[at : match.start()])))
        pieces.append(f"<mark>{escape(match.group(0))}</mark>")
        at = match.end()
    pieces.append(str(escape(text[at:])))
    return Markup("".join(pieces))
