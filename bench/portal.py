"""The portal under load: p50/p95 of its four hot endpoints, served by `pawpost web` (gunicorn).

Runs the production server as an operator would (`pawpost web`, several workers, threads)
on the seeded PostgreSQL data set (`python -m bench.seed` first: 10,000 families, 1,000,000
messages), signs in real sessions, and lets concurrent clients with keep-alive connections
request the inbox page, thread pages, the search endpoint and the unread-dot endpoint.
`GET /healthz` (one `SELECT 1` through the whole stack), measured in the same run under the
same load, is the baseline: ratios to it compare across machines.

Three phases: one client alone; an open loop at `--rate` requests/s (the whole staff of a
large business with the portal open polls about 40/s: each tab asks every 2.5 s), where
latency counts from when a request was due; and a closed loop of `--clients` clients
sending back to back, which saturates the host and shows its capacity.

    .venv/bin/python -m bench.portal [--database-url URL] [-n 400] [--rate 100] [--clients 4] [--workers N] [--no-docs]
    .venv/bin/python -m bench.portal screenshots     # docs/screenshots/ from the demo business
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from pathlib import Path
from urllib.parse import urlencode

from bench.seed import RESULTS_DIR, SEED_FILE, database_url

TARGET_P95_MS = 30.0
RESULTS_FILE = RESULTS_DIR / "portal.json"
DOCS = Path(__file__).resolve().parent.parent / "docs"
SECTION = "## Portal (issue 5): pages and endpoints under concurrent load"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def production_server(env: dict[str, str], workers: int, threads: int) -> Iterator[tuple[str, int]]:
    """`pawpost web` in its own process group; SIGTERM at the end (gunicorn's graceful stop)."""
    port = free_port()
    # The console script's entry point (`python -m pawpost.cli` would import the CLI twice).
    entry = "from pawpost.cli import main; main()"
    command = [sys.executable, "-c", entry, "web", "--workers", str(workers), "--threads", str(threads)]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "PAWPOST_WEB_LISTEN": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = Client("127.0.0.1", port).get("/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"pawpost web did not start:\n{process.stderr.read().decode() if process.stderr else ''}")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, as an operator's supervisor stops Pawpost; killed if it has not ended in 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


class Client:
    """One browser-like session: a keep-alive connection and the session cookie."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connection = http.client.HTTPConnection(host, port, timeout=30)
        self.cookie = ""
        self.headers: dict[str, str] = {}  # sent with every request (an API key: bench/api.py)

    def request(self, method: str, path: str, body: str | None = None, extra: dict[str, str] | None = None) -> tuple[int, bytes]:
        headers = {**self.headers, "Cookie": self.cookie} if self.cookie else dict(self.headers)
        headers.update(extra or {})
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()  # the server closed an idle keep-alive connection
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("pawpost_session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, data

    def get(self, path: str, extra: dict[str, str] | None = None) -> tuple[int, bytes]:
        return self.request("GET", path, extra=extra)

    def sign_in(self, email: str, password: str) -> None:
        _, page = self.get("/signin")
        found = re.search(rb'name="csrf-token" content="([^"]+)"', page)
        if not found:
            raise SystemExit("no CSRF token on /signin")
        body = urlencode({"email": email, "password": password, "csrf_token": found.group(1).decode()})
        status, _ = self.request("POST", "/signin", body)
        if status != 302:
            raise SystemExit(f"sign-in as {email} answered {status}")


@dataclass(frozen=True)
class Case:
    name: str
    who: str  # which signed-in session requests it
    paths: list[str]
    # Per path: the client address the proxy forwards (parents each have their own).
    forwarded_for: dict[str, str] | None = None

    def headers(self, path: str) -> dict[str, str] | None:
        return {"X-Forwarded-For": self.forwarded_for[path]} if self.forwarded_for else None


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def run_load(
    host: str, port: int, sessions: dict[str, tuple[str, str]], cases: list[Case], per_case: int, clients: int,
    rate: float | None = None,
    bearer: dict[str, list[str]] | None = None,
) -> dict[str, list[float]]:
    """`clients` threads, each with its own sessions, request a shuffled mix of every case.

    `bearer` names API callers (a case's `who`) and their keys: each client takes the next
    key of the list, so a key's own rate limit is shared by few clients.

    Closed loop (`rate` None): each client sends its next request when the last one is
    answered, so the load is whatever the server sustains. Open loop: request i is due
    at start + i / rate whether or not earlier ones were answered, and its latency counts
    from when it was due, so time spent waiting for a free client counts too.
    """
    rng = random.Random(5)
    work = [(case, rng.choice(case.paths)) for case in cases for _ in range(per_case)]
    rng.shuffle(work)
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    failures: list[str] = []
    lock = threading.Lock()
    position = iter(range(len(work)))
    key_turn = iter(range(1_000_000))
    begin: list[float] = []
    # The last to arrive starts the clock, before anyone is released.
    ready = threading.Barrier(clients + 1, action=lambda: begin.append(time.perf_counter()))

    def worker() -> None:
        try:
            requests()
        except BaseException as error:  # a thread's SystemExit would vanish silently
            ready.abort()
            with lock:
                failures.append(f"client failed: {error!r}")

    def requests() -> None:
        own = {}
        for who, (email, password) in sessions.items():
            client = Client(host, port)
            client.sign_in(email, password)
            own[who] = client
        own["anonymous"] = Client(host, port)
        for who, keys in (bearer or {}).items():
            with lock:
                turn = next(key_turn)
            own[who] = Client(host, port)
            own[who].headers = {"Authorization": f"Bearer {keys[turn % len(keys)]}"}
        for case in cases:  # warm-up: connections, worker imports, PostgreSQL caches
            for path in case.paths[:3]:
                own[case.who].get(path, case.headers(path))
        ready.wait()
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                return
            case, path = work[index]
            due = time.perf_counter() if rate is None else begin[0] + index / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            status, _ = own[case.who].get(path, case.headers(path))
            elapsed = (time.perf_counter() - due) * 1000
            with lock:
                if status != 200:
                    failures.append(f"{path}: {status}")
                samples[case.name].append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()  # everyone signed in and warmed up
    except threading.BrokenBarrierError:
        begin.append(time.perf_counter())  # a client failed; its error is reported below
    for thread in threads:
        thread.join()
    samples["_wall_seconds"] = [time.perf_counter() - begin[0]]
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[:3]}")
    return samples


AUDIT_ENTRIES = 100_000


def fill_audit_log(url: str, business_id: int, families: int) -> None:
    """A year of changes for the Audit page to page through (once per database)."""
    from sqlalchemy import func, insert, select

    from threads.db import make_engine, make_session_factory
    from threads.models import AuditEntry, Staff

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            if session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.business_id == business_id)):
                rows = []
            else:
                rows = audit_rows(list(session.scalars(select(Staff.id).where(Staff.business_id == business_id))), business_id, families)
            for chunk in range(0, len(rows), 10_000):
                session.execute(insert(AuditEntry), rows[chunk : chunk + 10_000])
        if engine.dialect.name == "postgresql":
            # Statistics, as autovacuum would gather them after such a load (the seed's
            # VACUUM ANALYZE ran before these rows existed): without them the planner takes
            # the table for empty and sorts every entry of the business for each page.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE audit_entries")
    finally:
        engine.dispose()


def audit_rows(staff: list[int], business_id: int, families: int) -> list[dict[str, object]]:
    start = datetime.now(UTC) - timedelta(days=365)
    return [
        {
            "business_id": business_id,
            "actor_id": staff[n % len(staff)],
            "actor_name": f"Staff {n % len(staff)}",
            "action": "family.change",
            "summary": f"Family {n % families}: Name saved.",
            "family_id": 1 + n % families,
            "staff_id": staff[(n * 7) % len(staff)] if n % 5 == 0 else None,
            "before": '{"name": "Before"}',
            "after": '{"name": "After"}',
            "at": start + timedelta(seconds=n * 300),
        }
        for n in range(AUDIT_ENTRIES)
    ]


PARENT_LINKS = 300


def parent_links(url: str, secret_key: str, families: int, rng: random.Random) -> list[str]:
    """Signed parent-page paths for the primary contacts of `PARENT_LINKS` random families.

    Each link is its own parent, so the page's limits (60 views a minute per contact, 300
    per client address) count as in production: the server trusts one proxy hop
    (PAWPOST_TRUSTED_PROXIES=1) and each link's requests carry their own X-Forwarded-For.
    The bench's ~8 parent views a second spread over them stay far below both limits, so
    no answer is a 429 and the times are the page's own.
    """
    from sqlalchemy import select

    from outbound.links import parent_token
    from threads.db import make_engine, make_session_factory
    from threads.models import Contact, Thread
    from threads.parent_links import link_key, link_secrets

    wanted = rng.sample(range(1, families + 1), PARENT_LINKS)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            rows = session.execute(
                select(Contact.id, Thread.reply_token)
                .join(Thread, Thread.family_id == Contact.family_id)
                .where(Contact.family_id.in_(wanted), Contact.is_primary)
            ).all()
            keys = link_secrets(session, [contact_id for contact_id, _ in rows], datetime.now(UTC))
            return [f"/p/{parent_token(secret_key, contact_id, link_key(keys[contact_id], token))}" for contact_id, token in rows]
    finally:
        engine.dispose()


def build_cases(seed: dict[str, object], rng: random.Random, parents: list[str]) -> list[Case]:
    search = str(seed.get("search_term") or "sha")
    prefixes = [search, search[:2], "bel", "max", "em", "li", "ch", "ro", "ma", "sa", "jo", "lu", "da", "ol"]
    first_thread = int(seed["typical_thread_id"])  # type: ignore[arg-type]
    threads = [first_thread] + [rng.randint(1, int(seed["families"])) for _ in range(200)]  # type: ignore[arg-type]
    ids = ",".join(str(rng.randint(1, int(seed["families"]))) for _ in range(50))  # type: ignore[arg-type]
    return [
        Case("healthz (baseline: SELECT 1 through the stack)", "anonymous", ["/healthz"]),
        Case("inbox page (senior, newest 50)", "senior", ["/messages"]),
        Case("thread page (newest 50, marks read)", "senior", [f"/threads/{t}" for t in threads]),
        Case("thread page (longest thread)", "senior", [f"/threads/{seed['long_thread_id']}"]),
        Case("search endpoint (as you type)", "senior", [f"/api/search?q={p}" for p in prefixes]),
        Case("unread-dot endpoint (senior with unread)", "senior", [f"/api/unread?ids={ids}"]),
        Case("unread-dot endpoint (senior, all read)", "inbox_zero", [f"/api/unread?ids={ids}"]),
        Case("staff page (admin)", "admin", ["/staff"]),
        Case("families page (first 50 by name)", "admin", ["/families", "/families?q=fam", "/families?q=son"]),
        Case("schedule page (week, by staff)", "admin", ["/schedule", "/schedule?by=family"]),
        Case("audit page (newest 50)", "admin", ["/audit", f"/audit?person={seed['senior_id']}"]),
        Case("parent page (signed link, newest 30, marks read)", "anonymous", parents,
             {path: f"10.{1 + n // 250}.{n % 250}.7" for n, path in enumerate(parents)}),
    ]


def benchmark(args: argparse.Namespace) -> int:
    if not SEED_FILE.exists():
        raise SystemExit(f"{SEED_FILE} is missing: run `python -m bench.seed` first")
    seed = json.loads(SEED_FILE.read_text())
    url = database_url(args.database_url) if args.database_url else str(seed["database_url"])
    env = {
        "PAWPOST_DATABASE_URL": url,
        "PAWPOST_QUEUE_URL": "memory://",
        "PAWPOST_SECRET_KEY": "bench-portal-secret-key-0123456789",
        "PAWPOST_DATA_DIR": tempfile.mkdtemp(prefix="pawpost-bench-"),
        "PAWPOST_TRUSTED_PROXIES": "1",  # the bench is the proxy: parents' addresses in X-Forwarded-For
    }
    password = str(seed["password"])
    sessions = {
        "senior": (str(seed["senior_email"]), password),
        "inbox_zero": (str(seed["inbox_zero_senior_emails"][0]), password),  # type: ignore[index]
        "admin": (str(seed["admin_email"]), password),
    }
    fill_audit_log(url, int(seed["business_id"]), int(seed["families"]))  # type: ignore[arg-type]
    parents = parent_links(url, env["PAWPOST_SECRET_KEY"], int(seed["families"]), random.Random(14))  # type: ignore[arg-type]
    cases = build_cases(seed, random.Random(7), parents)
    workers = args.workers or max(2, (os.cpu_count() or 1) * 2)
    load_before = round(os.getloadavg()[0], 1)
    phases = {}
    with production_server(env, workers, args.threads) as (host, port):
        plan = (
            ("one client", 1, max(50, args.n // 4), None),
            (f"open loop: {args.rate:g} requests/s from {args.senders} concurrent clients", args.senders, args.n, args.rate),
            (f"closed loop, saturating: {args.clients} clients back to back", args.clients, args.n, None),
        )
        for phase, clients, per_case, rate in plan:
            samples = run_load(host, port, sessions, cases, per_case, clients, rate)
            wall = samples.pop("_wall_seconds")[0]
            phases[phase] = {
                "clients": clients,
                "rate": rate,
                "requests_per_case": per_case,
                "requests_per_second": round(sum(len(v) for v in samples.values()) / wall, 1),
                "cases": _summarise(samples, cases[0].name),
            }
    report = {
        "measured_at": datetime.now(UTC).isoformat(),
        "server": f"pawpost web (gunicorn gthread): {workers} workers x {args.threads} threads",
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "data": {k: seed[k] for k in ("families", "messages", "long_thread_messages") if k in seed},
        "phases": phases,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    if not args.no_docs:
        write_docs(report)
    return 0


def _summarise(samples: dict[str, list[float]], baseline_name: str) -> dict[str, dict[str, float | bool]]:
    baseline = statistics.median(samples[baseline_name])
    return {
        name: {
            "p50_ms": statistics.median(values),
            "p95_ms": _p95(values),
            "max_ms": max(values),
            "p50_vs_baseline": statistics.median(values) / baseline,
            "target_met": _p95(values) < TARGET_P95_MS,
        }
        for name, values in samples.items()
    }


def print_report(report: dict) -> None:  # type: ignore[type-arg]
    print(f"{report['server']} on {report['cpus']} CPUs (load average {report['load_average_before']} before)")
    for phase, data in report["phases"].items():
        print(f"\n{phase}: {data['requests_per_case']} requests per case, {data['requests_per_second']} req/s")
        print(f"{'case':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p50/base':>9}")
        for name, row in data["cases"].items():
            mark = "" if row["target_met"] else "  (p95 over 30 ms)"
            print(f"{name:<48} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {row['max_ms']:>8.1f} {row['p50_vs_baseline']:>8.1f}x{mark}")


def write_docs(report: dict) -> None:  # type: ignore[type-arg]
    """Replace this part's section of docs/benchmarks.md, leaving every other section alone."""
    lines = [
        SECTION,
        "",
        f"Measured {report['measured_at'][:16].replace('T', ' ')} UTC by `python -m bench.portal` on the "
        f"`bench/seed.py` PostgreSQL set ({report['data'].get('families')} families, {report['data'].get('messages')} messages). "
        f"Server: {report['server']}, started with `pawpost web`. {report['cpus']} CPUs shared by the server, the load "
        f"generator, PostgreSQL and whatever else ran (1-minute load average {report['load_average_before']} before the run). "
        "Times are end to end over HTTP with keep-alive; each client is a signed-in session. The baseline is `GET /healthz` "
        "(one `SELECT 1` through the same stack) measured in the same phase: the ratio column is what compares across "
        "machines. Target: p95 < 30 ms.",
        "",
        "The phases: one client alone; an **open loop** at a fixed rate, every request due at its own moment "
        "whether or not earlier ones were answered and timed from that moment (so waiting for a free client counts), "
        "above the load a business generates (the 52 staff with the portal open poll about 40 requests/s in all: every tab "
        "asks every 2.5 s); and a **closed loop** whose clients send back to back, which saturates the host: "
        "its req/s is the capacity, and its latencies are that capacity shared by the clients.",
        "",
    ]
    for phase, data in report["phases"].items():
        lines += [
            f"**{phase}** ({data['requests_per_case']} requests per case, shuffled, {data['requests_per_second']} req/s in total):",
            "",
            "| case | p50 ms | p95 ms | max ms | p50 / baseline | p95 < 30 ms |",
            "|---|---:|---:|---:|---:|:---:|",
        ]
        for name, row in data["cases"].items():
            lines.append(
                f"| {name} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['max_ms']:.1f} | {row['p50_vs_baseline']:.1f}x | {'yes' if row['target_met'] else 'no'} |"
            )
        lines.append("")
    lines += [
        "Statements per request (counted with SQLAlchemy events, one client): inbox page 4, thread page 9 "
        "(staff; thread with family and pets; 50 messages with their authors; their attachments; read-cursor upsert; "
        "contacts with addresses, cursors, outbox; the header's quarantine count), search 3, unread dot 5 "
        "(4 for a senior with nothing unread: `portal.caught_up` keeps that answer until a newer message exists, "
        "so the all-read case here measures the remembered answer; `bench.queries` times the full check).",
        "",
        "Screenshots of the current code (`python -m bench.portal screenshots`, demo business): "
        "[inbox](screenshots/inbox.png), [thread](screenshots/thread.png), [thread at phone width](screenshots/thread-phone.png).",
        "",
    ]
    path = DOCS / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Pawpost benchmarks\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + ("\n" + text[end + 1 :] if end != -1 else "")
    path.write_text(text.rstrip("\n") + "\n")


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def picture_png(width: int = 240, height: int = 160) -> bytes:
    """A small coral-to-sand gradient PNG, so the screenshot shows a real thumbnail."""
    import struct
    import zlib

    rows = b"".join(
        b"\x00" + b"".join(bytes((255, 111 + (x * 100) // width, 97 + (y * 120) // height)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def seed_conversations(settings: Any) -> tuple[tuple[str, str], int]:
    """The demo business with a morning's worth of messages; returns a senior's sign-in and a thread."""
    from sqlalchemy import select

    from threads.db import make_engine, make_session_factory
    from threads.demo import demo_password, seed_demo
    from threads.models import Family, Staff, Thread
    from threads.posting import NewAttachment, post_message
    from threads.reading import mark_read

    engine = make_engine(settings.database_url)
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session, session.begin():
        business_id = seed_demo(session, now=now, secret_key=settings.secret_key, mail_domain=settings.mail_domain)
        staff = {s.email.split("@")[0]: s for s in session.scalars(select(Staff).where(Staff.business_id == business_id))}
        families = {f.name.split()[0]: f for f in session.scalars(select(Family).where(Family.business_id == business_id))}

        def thread(name: str) -> Thread:
            found = session.scalar(select(Thread).where(Thread.family_id == families[name].id))
            assert found is not None
            return found

        def at(minutes_ago: float) -> datetime:
            return now - timedelta(minutes=minutes_ago)

        johnson = thread("Johnson")
        emma, liam = families["Johnson"].contacts
        post_message(session, johnson, emma, "Hi! Bella has a vet appointment at 4 today, could her walk be a bit earlier?", source="email", now=at(95),
                     trimmed="On Mon, Happy Tails <notifications@reply.localhost> wrote:\n> Bella's walk is booked for 9:00.")
        post_message(session, johnson, staff["priya"], "Of course! Jordan can come at 8:30 instead.\nI've moved it on the schedule.", now=at(90))
        post_message(session, johnson, None, "Automatic reply from liam.johnson@example.com (out of office) was not posted.", now=at(89))
        post_message(session, johnson, staff["jordan"], "Picked Bella up, she's full of beans this morning!", now=at(40))
        post_message(session, johnson, staff["jordan"], "Back home, water bowl refilled.", [NewAttachment("bella-park.png", "image/png", picture_png())], now=at(6))
        post_message(session, johnson, liam, "Thank you both! She looks so happy.", source="email", now=at(2))
        for name, author_index, text, minutes in [
            ("García", 0, "Could Luna get a bath with her groom on Friday?", 14),
            ("Nguyen", 1, "Max will be dropped off by his grandma today.", 33),
            ("Patel", 0, "Coco's new food is in the bag by the door.", 75),
            ("O'Brien", 0, "Biscuit seemed tired yesterday, anything unusual on the walk?", 180),
            ("Müller", 1, "Thanks for the photos!", 60 * 26),
        ]:
            family = families[name]
            post_message(session, thread(name), family.contacts[author_index], text, source="email", now=at(minutes))
        post_message(session, thread("Smith"), staff["morgan"], "Daisy's boarding stay is confirmed for the 12th.", now=at(60 * 50))
        priya = staff["priya"]
        for name in ("Patel", "Müller", "Smith"):
            mark_read(session, thread(name), priya.person)
        login = (priya.email, demo_password(settings.secret_key, priya.email))
        thread_id = johnson.id
    engine.dispose()
    return login, thread_id


def screenshots(_: argparse.Namespace) -> int:
    """The inbox and a thread of the demo business, as a senior sees them, into docs/screenshots/."""
    from werkzeug.serving import make_server

    from pawpost.settings import Settings
    from portal import create_app
    from threads import migrate

    from playwright.sync_api import sync_playwright

    out = DOCS / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings.from_env({"PAWPOST_DATA_DIR": data_dir, "PAWPOST_QUEUE_URL": "memory://"})
        migrate.upgrade(settings.database_url)
        login, thread_id = seed_conversations(settings)
        app = create_app(settings)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for width, height, names in ((1280, 800, ("inbox", "thread")), (390, 760, (None, "thread-phone"))):
                    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
                    page.goto(base + "/signin")
                    page.get_by_label("Email").fill(login[0])
                    page.get_by_label("Password").fill(login[1])
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_url("**/messages")
                    page.wait_for_timeout(500)
                    if names[0]:
                        page.screenshot(path=str(out / f"{names[0]}.png"))
                    page.goto(f"{base}/threads/{thread_id}")
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(out / f"{names[1]}.png"))
                    page.close()
                browser.close()
        finally:
            server.shutdown()
            app.extensions["pawpost"].engine.dispose()
    print(f"wrote {', '.join(sorted(p.name for p in out.glob('*.png')))} to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("load", "screenshots"), default="load")
    parser.add_argument("--database-url", help="default: the URL bench/seed.py recorded")
    parser.add_argument("-n", type=int, default=400, help="requests per case (default 400)")
    parser.add_argument("--clients", type=int, default=4, help="clients of the saturating closed-loop phase (default 4)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second of the open-loop phase (default 100)")
    parser.add_argument("--senders", type=int, default=16, help="clients sharing the open-loop phase (default 16)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: 2 per CPU)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--no-docs", action="store_true", help="print and keep bench/results/portal.json; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    return screenshots(args) if args.what == "screenshots" else benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
