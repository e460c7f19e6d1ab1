"""Copy the seeded PostgreSQL set (`bench.seed`) into a SQLite file, for the embedded default's figures.

Generating the set twice would risk two different data sets; copying the rows keeps the
PostgreSQL and SQLite figures about the same messages. The file is migrated first; the
search triggers are set aside during the copy and the FTS5 index is rebuilt once at the end
(what the migrations do), which is minutes faster than a trigger call per message.

    .venv/bin/python -m bench.seed_sqlite --from postgresql://… --to var/bench.sqlite3
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.seed import database_url, libpq_url
from threads.migrate import upgrade

BATCH_ROWS = 20_000


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy would have stored on SQLite for the same value."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _rows(source: psycopg.Connection[Any], table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    with source.cursor(name=f"copy_{table}") as cursor:
        cursor.itersize = BATCH_ROWS
        cursor.execute(f'SELECT {quoted} FROM "{table}"')  # noqa: S608 - names come from the schema
        while batch := cursor.fetchmany(BATCH_ROWS):
            yield [tuple(_sqlite_value(v) for v in row) for row in batch]


def copy_set(source_url: str, target: Path) -> dict[str, int]:
    """Every table's rows, column by column as far as both schemas share them."""
    target.unlink(missing_ok=True)
    upgrade(f"sqlite:///{target}")
    counts: dict[str, int] = {}
    sink = sqlite3.connect(target)
    sink.execute("PRAGMA synchronous = OFF")
    triggers = sink.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'messages_fts_%'").fetchall()
    for name, _ in triggers:
        sink.execute(f'DROP TRIGGER "{name}"')
    with psycopg.connect(libpq_url(source_url)) as source:
        tables = [r[0] for r in sink.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'messages_fts%'"
                                             " AND name != 'alembic_version'")]
        for table in tables:
            wanted = [r[1] for r in sink.execute(f'PRAGMA table_info("{table}")')]
            present = {r[0] for r in source.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))}
            columns = [c for c in wanted if c in present]
            if not columns:
                continue
            statement = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'  # noqa: S608
            counts[table] = 0
            for batch in _rows(source, table, columns):
                sink.executemany(statement, batch)
                counts[table] += len(batch)
            sink.commit()
    for _, create in triggers:
        sink.execute(create)
    sink.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    sink.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
    sink.commit()
    sink.execute("ANALYZE")
    sink.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--from", dest="source", help="the seeded PostgreSQL database (default as bench.seed)")
    parser.add_argument("--to", dest="target", required=True, type=Path, help="the SQLite file to (re)create")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    counts = copy_set(database_url(args.source), args.target)
    print(f"{args.target}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items() if n) + f" in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
