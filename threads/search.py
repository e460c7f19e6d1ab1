"""Message search: the text of a business's messages, by word prefix, within what the asker may open.

PostgreSQL answers from a GIN index on `to_tsvector('simple', body)` (migration
0012h_message_search); SQLite from the FTS5 table `messages_fts` that triggers keep in step
with `messages`. Both match every term as a word prefix ("walk" finds "walks" and
"walking"), without stemming or stop words, so the two databases agree. Rule 5 applies:
seniors and admins search every thread of their business, basic staff only the threads of
the families they are scheduled with today. Internal notes are included (only staff search).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, column, func, literal_column, select, table, text
from sqlalchemy.orm import Session

from threads.models import Contact, Family, Message, Staff, Thread
from threads.posting import author_label
from threads.schedule import business_today, families_for_staff

MAX_RESULTS = 50
MAX_TERMS = 8
MAX_TERM_CHARS = 50
# What a result reads of a message to cut its snippet from: never megabytes per row.
SNIPPET_SOURCE_CHARS = 20_000
SNIPPET_BEFORE = 60
SNIPPET_CHARS = 220

# The expression the GIN index holds; a query must repeat it exactly for the index to serve.
PG_DOCUMENT = func.to_tsvector(literal_column("'simple'::regconfig"), Message.body)
_FTS = table("messages_fts", column("rowid"))


def not_search_index(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic `include_name`: the search index lives in migrations only (an expression
    index; an FTS5 table and its shadow tables), so comparing models leaves it out."""
    return not (name or "").startswith(("messages_fts", "ix_messages_body_fts"))


@dataclass(frozen=True)
class SearchHit:
    message_id: int
    thread_id: int
    family_id: int
    family_name: str
    author_name: str
    created_at: datetime
    snippet: str  # plain text around the first match: the page escapes it, then marks terms
    internal: bool


def search_terms(query: str) -> list[str]:
    """The distinct words of what was typed (letters and digits only), at most MAX_TERMS:
    nothing typed reaches a query language as syntax."""
    seen: dict[str, None] = {}
    for word in re.findall(r"[^\W_]+", query.casefold()):
        seen.setdefault(word[:MAX_TERM_CHARS], None)
        if len(seen) == MAX_TERMS:
            break
    return list(seen)


def term_pattern(terms: list[str]) -> re.Pattern[str]:
    """A regex finding the words of a text that start with one of the terms (for highlighting)."""
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")\w*", re.IGNORECASE)


def search_messages(session: Session, staff: Staff, query: str, now: datetime, *, limit: int = MAX_RESULTS) -> list[SearchHit]:
    """Messages matching every term, newest first, among the threads `staff` may open."""
    terms = search_terms(query)
    if not terms:
        return []
    statement = _base(limit).where(Thread.business_id == staff.business_id)
    if not staff.is_senior:
        family_ids = [f.id for f in families_for_staff(session, staff, business_today(staff.business, now))]
        if not family_ids:
            return []
        statement = statement.where(Thread.family_id.in_(family_ids))
    if session.get_bind().dialect.name == "postgresql":
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), " & ".join(f"{t}:*" for t in terms))
        statement = statement.where(PG_DOCUMENT.op("@@")(tsquery))
    else:
        matching = select(_FTS.c.rowid).where(text("messages_fts MATCH :fts"))
        statement = statement.where(Message.id.in_(matching)).params(fts=" ".join(f'"{t}"*' for t in terms))
    pattern = term_pattern(terms)
    return [
        SearchHit(
            message_id=row[0],
            thread_id=row[1],
            family_id=row[2],
            family_name=row[3],
            author_name=row[4],
            created_at=row[5] if row[5].tzinfo else row[5].replace(tzinfo=UTC),
            snippet=_snippet(row[6] or "", pattern),
            internal=bool(row[7]),
        )
        for row in session.execute(statement)
    ]


def _base(limit: int) -> Select:  # type: ignore[type-arg]
    author = author_label()
    return (
        select(
            Message.id, Message.thread_id, Thread.family_id, Family.name, author, Message.created_at,
            func.substr(Message.body, 1, SNIPPET_SOURCE_CHARS), Message.internal,
        )
        .join(Thread, Thread.id == Message.thread_id)
        .join(Family, Family.id == Thread.family_id)
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )


def _snippet(body: str, pattern: re.Pattern[str]) -> str:
    """About SNIPPET_CHARS of the body around its first matching word, on one line."""
    found = pattern.search(body)
    start = max(0, found.start() - SNIPPET_BEFORE) if found else 0
    piece = " ".join(body[start : start + SNIPPET_CHARS].split())
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(body) else "")
