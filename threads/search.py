"""Message search: the text of a business's messages, by word prefix, within what the asker may open.

PostgreSQL matches the stored column `messages.body_tsv` (`to_tsvector('simple', body)`,
GIN-indexed; migration 0016f_search_document); SQLite the FTS5 table `messages_fts` that
triggers keep in step with `messages`. Both match every term as a word prefix ("walk" finds
"walks" and "walking"), without stemming or stop words, so the two databases agree. Rule 5
applies: seniors and admins search every thread of their business, basic staff only the
threads of the families they are scheduled with today. Internal notes are included (only
staff search).

The page is the newest MAX_RESULTS matches, and how to find them cheaply depends on how
common the words are, which a planner guesses badly (words of one template come together,
and it multiplies their frequencies). So the plan is chosen by what the data shows: a
senior's search first reads the newest RECENT_WINDOW messages in id order and stops at the
page's last hit (a common word is done after a few hundred rows); only when that window
held too few hits does the index answer for the older messages, where the words are known to be rare.
A basic staff member's scope is a handful of threads: they are read newest first, thread by
thread, which costs at most the messages of today's families.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Row, Select, column, func, literal_column, select, table, text, true
from sqlalchemy.orm import Session

from threads.models import Contact, Family, Message, Staff, Thread
from threads.posting import author_label
from threads.schedule import business_today, families_for_staff

MAX_RESULTS = 50
MAX_TERMS = 8
MAX_TERM_CHARS = 50
# How many of the newest messages a senior's search reads in id order before it asks the
# index about the older ones: a word with fewer than a page of hits among them is rare,
# and the index finds a rare word's hits at once (see the module docstring).
RECENT_WINDOW = 10_000
# Which of several words is rarest is judged on this many of the newest messages.
RARITY_SAMPLE = 2_000
# What a result reads of a message to cut its snippet from: never megabytes per row.
SNIPPET_SOURCE_CHARS = 20_000
SNIPPET_BEFORE = 60
SNIPPET_CHARS = 220

# The stored document the GIN index holds (PostgreSQL only, so not in the models).
PG_DOCUMENT = literal_column("messages.body_tsv")
_FTS = table("messages_fts", column("rowid"))


def not_search_index(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic `include_name`: the search index lives in migrations only (a generated
    column and its GIN index; an FTS5 table and its shadow tables), so comparing models leaves it out."""
    return not (name or "").startswith(("messages_fts", "ix_messages_body_fts", "ix_messages_body_tsv", "body_tsv"))


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
    thread_ids = None
    if not staff.is_senior:
        thread_ids = _todays_threads(session, staff, now)
        if not thread_ids:
            return []
    if session.get_bind().dialect.name == "postgresql":
        rows = _postgres_page(session, staff.business_id, thread_ids, terms, limit)
    else:
        rows = _sqlite_page(session, staff.business_id, thread_ids, terms, limit)
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
        for row in rows
    ]


def _todays_threads(session: Session, staff: Staff, now: datetime) -> list[int]:
    family_ids = [f.id for f in families_for_staff(session, staff, business_today(staff.business, now))]
    if not family_ids:
        return []
    return list(session.scalars(
        select(Thread.id).where(Thread.business_id == staff.business_id, Thread.family_id.in_(family_ids))
    ))


def _postgres_page(
    session: Session, business_id: int, thread_ids: list[int] | None, terms: list[str], limit: int
) -> list[Row[Any]]:
    everything = _tsquery(terms)
    # ts_match_vq is the function behind @@; spelt as a function the index cannot serve it,
    # which keeps the planner on the id-ordered walk that stops at the page's last hit.
    walked = func.ts_match_vq(PG_DOCUMENT, everything)
    if thread_ids is not None:
        scope = select(Thread.id).where(Thread.business_id == business_id, Thread.id.in_(thread_ids)).subquery()
        newest = (
            select(Message.id).where(Message.thread_id == scope.c.id, walked)
            .order_by(Message.id.desc()).limit(limit).lateral()
        )
        ids = select(newest.c.id).select_from(scope.join(newest, true()))
        return list(session.execute(_page(limit).where(Message.id.in_(ids))))
    floor = (session.scalar(select(func.max(Message.id))) or 0) - RECENT_WINDOW
    rows = list(session.execute(_page(limit).where(Thread.business_id == business_id, Message.id > floor, walked)))
    if len(rows) == limit or floor <= 0:
        return rows
    # Fewer than a page among the newest messages: the words are rare together, and the GIN
    # index lists the older hits of the one rarest there (a word in every other message, such
    # as "the", would make the index collect half a million rows); the others are tested on
    # those rows. Materialised, so no LIMIT lures the planner back onto the id walk.
    rarest = _rarest(session, terms, floor + RECENT_WINDOW - RARITY_SAMPLE)
    older = (
        select(Message.id).join(Thread, Thread.id == Message.thread_id)
        .where(Thread.business_id == business_id, Message.id <= floor, PG_DOCUMENT.op("@@")(_tsquery([rarest])), walked)
        .cte("older").prefix_with("MATERIALIZED")
    )
    rest = limit - len(rows)
    newest_older = select(older.c.id).order_by(older.c.id.desc()).limit(rest)
    return rows + list(session.execute(_page(rest).where(Message.id.in_(newest_older))))


def _tsquery(terms: list[str]) -> ColumnElement[Any]:
    return func.to_tsquery(literal_column("'simple'::regconfig"), " & ".join(f"{t}:*" for t in terms))


def _rarest(session: Session, terms: list[str], floor: int) -> str:
    """The term with the fewest hits among the newest messages (those above `floor`);
    on a tie the longer (a longer prefix matches fewer words)."""
    if len(terms) == 1:
        return terms[0]
    counts = session.execute(
        select(*(func.count().filter(func.ts_match_vq(PG_DOCUMENT, _tsquery([t]))) for t in terms)).where(Message.id > floor)
    ).one()
    return min(zip(counts, terms, strict=True), key=lambda pair: (pair[0], -len(pair[1])))[1]


def _sqlite_page(
    session: Session, business_id: int, thread_ids: list[int] | None, terms: list[str], limit: int
) -> list[Row[Any]]:
    # FTS5 yields the hits newest first (ORDER BY its rowid) and stops at the page's last;
    # a basic staff member's threads are a column of the index, so FTS5 intersects them.
    fts = "body : (" + " AND ".join(f'"{t}"*' for t in terms) + ")"
    if thread_ids is not None:
        fts += " AND thread_id : (" + " OR ".join(f'"{i}"' for i in thread_ids) + ")"
    statement = _page(limit, _FTS.join(Message, Message.id == _FTS.c.rowid), _FTS.c.rowid)
    statement = statement.where(text("messages_fts MATCH :fts"), Thread.business_id == business_id)
    if thread_ids is not None:
        statement = statement.where(Message.thread_id.in_(thread_ids))
    return list(session.execute(statement.params(fts=fts)))


def _page(limit: int, source: FromClause | None = None, newest: ColumnElement[Any] | None = None) -> Select:  # type: ignore[type-arg]
    """What a hit shows, for the newest `limit` messages the caller's conditions leave
    (`source` and `newest`: where the rows come from and what orders them, when not `messages`)."""
    author = author_label()
    return (
        select(
            Message.id, Message.thread_id, Thread.family_id, Family.name, author, Message.created_at,
            func.substr(Message.body, 1, SNIPPET_SOURCE_CHARS), Message.internal,
        )
        .select_from(source if source is not None else Message)
        .join(Thread, Thread.id == Message.thread_id)
        .join(Family, Family.id == Thread.family_id)
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .order_by((newest if newest is not None else Message.id).desc())
        .limit(limit)
    )


def _snippet(body: str, pattern: re.Pattern[str]) -> str:
    """About SNIPPET_CHARS of the body around its first matching word, on one line."""
    found = pattern.search(body)
    start = max(0, found.start() - SNIPPET_BEFORE) if found else 0
    piece = " ".join(body[start : start + SNIPPET_CHARS].split())
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(body) else "")
