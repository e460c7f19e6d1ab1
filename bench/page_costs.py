"""What each portal page costs, apart from the host's load: SQL statements, their time,
the process's CPU time and the bytes sent, per request, in one process (no HTTP, no
other clients), on the `bench/seed.py` data set. Statements exclude BEGIN and COMMIT;
`tx` counts the transactions (each one more checkout, pool ping, BEGIN and COMMIT or
ROLLBACK on PostgreSQL).

`bench.portal` times pages end to end under load, which a busy machine blurs; these
figures hold still (statements and bytes exactly, CPU nearly), so they compare code
versions: run it on each and set the lines side by side. The CPU column is the minimum
over the requests (the least disturbed one); its median is beside it.

    .venv/bin/python -m bench.page_costs [--database-url URL] [-n 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select

from bench.portal import fill_audit_log, parent_links
from bench.seed import SEED_FILE, database_url

SECRET_KEY = "bench-page-costs-secret-key-0123456789"


def pages(seed: dict[str, Any], parent: str) -> list[tuple[str, str]]:
    return [
        ("staff page (admin)", "/staff"),
        ("inbox page (admin, newest 50)", "/messages"),
        ("thread page (newest 50, marks read)", f"/threads/{seed['typical_thread_id']}"),
        ("thread page (longest thread)", f"/threads/{seed['long_thread_id']}"),
        ("API thread messages (first 50)", f"/api/v1/threads/{seed['typical_thread_id']}/messages?limit=50"),
        ("API thread messages (longest, first 50)", f"/api/v1/threads/{seed['long_thread_id']}/messages?limit=50"),
        ("families page (first 50 by name)", "/families"),
        ("families page (name contains 'son')", "/families?q=son"),
        ("schedule page (week, by staff)", "/schedule"),
        ("schedule page (week, by family)", "/schedule?by=family"),
        ("audit page (newest 50)", "/audit"),
        ("audit page (one person)", f"/audit?person={seed['senior_id']}"),
        ("parent page (signed link, newest 30)", parent),
    ]


def measure(url: str, seed: dict[str, Any], repeat: int) -> list[dict[str, Any]]:
    import random

    from pawpost.settings import Settings
    from portal import create_app
    from portal.auth import session_fingerprint
    from threads.accounts import start_staff_session
    from threads.api_keys import create_api_key
    from threads.models import API_SCOPES, Staff

    settings = Settings.from_env({
        "PAWPOST_DATABASE_URL": url, "PAWPOST_QUEUE_URL": "memory://", "PAWPOST_SECRET_KEY": SECRET_KEY,
        "PAWPOST_DATA_DIR": tempfile.mkdtemp(prefix="pawpost-costs-"),
    })
    app = create_app(settings)
    app.config["PAWPOST_API_REQUESTS_PER_MINUTE"] = 1_000_000  # the key's limit never answers
    state = app.extensions["pawpost"]
    statements: list[float] = []

    transactions: list[int] = []

    @event.listens_for(state.engine, "begin")
    def begun(conn):  # type: ignore[no-untyped-def]
        transactions.append(1)

    @event.listens_for(state.engine, "before_cursor_execute")
    def started(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        context._bench_started = time.perf_counter()

    @event.listens_for(state.engine, "after_cursor_execute")
    def finished(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        statements.append((time.perf_counter() - context._bench_started) * 1000)

    # The other waits on the database: the BEGIN psycopg sends before a transaction's first
    # statement, COMMIT or ROLLBACK at its end, and a liveness ping when a connection is lent.
    # Only those that reach the server: none for a connection in autocommit, and a COMMIT or
    # ROLLBACK with no transaction open sends nothing (psycopg knows the state).
    others: list[str] = []

    def dbapi(conn):  # type: ignore[no-untyped-def]
        return conn.connection.dbapi_connection

    def began(conn):  # type: ignore[no-untyped-def]
        if not getattr(dbapi(conn), "autocommit", False):
            others.append("begin")

    def ended(conn, name="end"):  # type: ignore[no-untyped-def]
        info = getattr(dbapi(conn), "info", None)
        if info is None or info.transaction_status != 0:  # psycopg: 0 is IDLE
            others.append(name)

    event.listen(state.engine, "begin", began)
    event.listen(state.engine, "commit", ended)
    event.listen(state.engine, "rollback", ended)
    ping = state.engine.dialect.do_ping

    def counted_ping(dbapi_connection):  # type: ignore[no-untyped-def]
        others.append("ping")
        return ping(dbapi_connection)

    state.engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]

    admin, parent, api = app.test_client(), app.test_client(), app.test_client()
    with app.test_request_context(), state.sessions() as session, session.begin():
        staff = session.scalar(select(Staff).where(Staff.email == seed["admin_email"]))
        assert staff is not None
        fingerprint = session_fingerprint(staff)
        _, token = start_staff_session(session, staff, datetime.now(UTC))
        _, key = create_api_key(session, staff.business_id, name="bench.page_costs", scopes=list(API_SCOPES), now=datetime.now(UTC))
    with admin.session_transaction() as cookie:
        cookie["sid"], cookie["auth"], cookie.permanent = token, fingerprint, True
    # Several links, one per round, so the page's per-contact limit (60 a minute) never answers.
    links = parent_links(url, SECRET_KEY, int(seed["families"]), random.Random(14))
    results = []
    for name, path in pages(seed, "PARENT"):
        cpu, counts, trips, sql, sizes, begins = [], [], [], [], [], []
        for round_ in range(repeat + 3):
            client, target = (parent, links[round_ % len(links)]) if path == "PARENT" else (admin, path)
            headers = None
            if path.startswith("/api/"):  # a key and no session cookie, as an integration calls
                client, headers = api, {"Authorization": f"Bearer {key}"}
            statements.clear()
            others.clear()
            transactions.clear()
            began = time.process_time()
            response = client.get(target, headers=headers, environ_base={"REMOTE_ADDR": f"10.9.{round_ % 250}.1"})
            spent = (time.process_time() - began) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{target}: {response.status_code}")
            if round_ >= 3:  # the first rounds warm caches and compile templates
                cpu.append(spent)
                counts.append(len(statements))
                trips.append(len(statements) + len(others))
                begins.append(len(transactions))
                sql.append(sum(statements))
                sizes.append(len(response.data))
        results.append({
            "page": name, "statements": max(counts), "round_trips": max(trips), "transactions": max(begins),
            "sql_ms_median": statistics.median(sql),
            "cpu_ms_min": min(cpu), "cpu_ms_median": statistics.median(cpu), "bytes": max(sizes),
        })
    state.engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: the URL bench/seed.py recorded")
    parser.add_argument("-n", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if not SEED_FILE.exists():
        raise SystemExit(f"{SEED_FILE} is missing: run `python -m bench.seed` first")
    seed = json.loads(SEED_FILE.read_text())
    url = database_url(args.database_url) if args.database_url else str(seed["database_url"])
    fill_audit_log(url, int(seed["business_id"]), int(seed["families"]))  # as bench.portal does
    results = measure(url, seed, args.n)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'page':<40} {'statements':>10} {'trips':>5} {'tx':>3} {'SQL ms':>7} {'CPU ms min':>10} {'median':>7} {'bytes':>8}")
    for row in results:
        print(f"{row['page']:<40} {row['statements']:>10} {row['round_trips']:>5} {row['transactions']:>3} {row['sql_ms_median']:>7.1f} {row['cpu_ms_min']:>10.1f} {row['cpu_ms_median']:>7.1f} {row['bytes']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
