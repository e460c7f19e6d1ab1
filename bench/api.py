"""The REST API and webhooks at the 1,000,000-message set (issue 13), against `pawpost web`
(gunicorn) and `pawpost worker` processes on PostgreSQL + Redis, with a baseline measured in
the same run for each figure:

(a) bulk upsert of 10,000 families (new to Pawpost, beside the seeded 10,000) and 13,000
    appointments, POSTed as the `pawpost import` document to /api/v1/directory (target
    < 20 s); baseline: a tenth of the same document through `import_directory` in this
    process (no HTTP, no API layer), rolled back, compared per family. Then that tenth is
    POSTed again, every family known (the per-family update path). The synced families are
    removed at the end, so the seeded set stays as it was.
(b) a thread's messages read through the API under the open-loop load of bench/portal.py
    (its `run_load`), target p95 < 30 ms; baselines in the same mix: /healthz (SELECT 1
    through the stack) and the portal's own thread page for the same threads.
(c) webhook latency from the API POST that commits a message to the local receiver's 2xx
    (p50/p99, target p99 < 2 s), and deliveries per second for a burst; baseline: the same
    signed POST sent straight from this process to the receiver (the network floor).

    .venv/bin/python -m bench.seed --database-url postgresql://postgres@127.0.0.1:5432/test_d_bench   # once
    .venv/bin/python -m bench.api [--database-url URL] [--queue-url redis://127.0.0.1:6379/14]

Messages it posts stay in the database (a few hundred a run, next to the million).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.portal import Case, Client, _p95, production_server, run_load, stop
from bench.seed import RESULTS_DIR, SEED_FILE, database_url

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## API and webhooks (issue 13)"
RESULTS_FILE = RESULTS_DIR / "api.json"
SECRET_KEY = "bench-api-secret-key-0123456789abcdef"
TARGETS = {"upsert_seconds": 20.0, "read_p95_ms": 30.0, "webhook_p99_ms": 2000.0}
FAMILY_PREFIX = "api-bench-"
READ_KEYS = 24  # 600 requests a minute each: the open loop stays under every key's limit


def progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


# -- set-up in the database --------------------------------------------------------------


def make_keys(url: str, business_id: int, count: int) -> list[str]:
    from threads.api_keys import create_api_key
    from threads.db import make_engine, make_session_factory
    from threads.models import API_SCOPES
    from threads.types import utcnow

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            return [create_api_key(session, business_id, name=f"bench {n}", scopes=list(API_SCOPES), now=utcnow())[1] for n in range(count)]
    finally:
        engine.dispose()


def directory_document(url: str, business_id: int, today: date, families: int, appointments: int) -> dict[str, Any]:
    """What a business's software sends on its first sync: `families` families new to Pawpost
    (two contacts and a pet each) and `appointments` one-hour visits over the next 30 days by
    the seeded walkers, as the `pawpost import` document."""
    from sqlalchemy import select

    from threads.db import make_engine, make_session_factory
    from threads.models import Business, Staff

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            business = session.get(Business, business_id)
            assert business is not None
            staff = session.execute(select(Staff.external_id, Staff.name, Staff.email, Staff.role).where(Staff.business_id == business_id).order_by(Staff.id)).all()
            head = {"id": business.slug, "name": business.name, "timezone": business.timezone}
    finally:
        engine.dispose()
    rng = random.Random(13)
    walkers = [s.external_id for s in staff if s.role == "basic"]
    start_day = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    entries = [
        {
            "id": f"{FAMILY_PREFIX}{n:05d}", "name": f"Synced family {n:05d}",
            "contacts": [
                {"id": "a", "name": f"Alex Synced{n}", "email": f"alex.{n}@sync.pawbench.example", "primary": True},
                {"id": "b", "name": f"Blair Synced{n}", "email": f"blair.{n}@sync.pawbench.example", "primary": False},
            ],
            "pets": [{"id": "p", "name": f"Rex{n}", "species": "dog", "breed": "Mixed"}],
        }
        for n in range(families)
    ]
    visits = []
    for n in range(appointments):
        start = start_day + timedelta(days=rng.randrange(30), hours=12 + rng.randrange(10))
        visits.append({
            "id": f"{FAMILY_PREFIX}visit-{n:05d}", "family": rng.choice(entries)["id"], "staff": [rng.choice(walkers)],
            "service": "walk", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        })
    return {
        "business": head,
        "staff": [{"id": s.external_id, "name": s.name, "email": s.email, "role": s.role} for s in staff],
        "families": entries,
        "appointments": visits,
    }


def remove_synced_families(url: str, business_id: int) -> None:
    """Leave the seeded set as it was: the synced families go, with their threads and visits.

    `messages.contact_id` has no index, so each deleted contact's `ON DELETE SET NULL` would
    scan the million messages (0.36 s a contact here): a temporary index serves the cascade."""
    from sqlalchemy import text

    from threads.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if not connection.execute(text("SELECT 1 FROM families WHERE business_id = :b AND external_id LIKE :p LIMIT 1"), {"b": business_id, "p": FAMILY_PREFIX + "%"}).first():
                return
            connection.execute(text("CREATE INDEX bench_api_messages_contact_id ON messages (contact_id)"))
            connection.execute(
                text("DELETE FROM families WHERE business_id = :b AND external_id LIKE :p"), {"b": business_id, "p": FAMILY_PREFIX + "%"}
            )
            connection.execute(text("DROP INDEX bench_api_messages_contact_id"))
    finally:
        engine.dispose()


def upsert_in_process(url: str, document: dict[str, Any]) -> float:
    """The baseline: the same import, no HTTP and no API layer, rolled back."""
    from threads.db import make_engine, make_session_factory
    from threads.importing import import_directory

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            started = time.perf_counter()
            import_directory(session, json.loads(json.dumps(document)), mail_domain="mail.pawbench.example")
            session.flush()
            elapsed = time.perf_counter() - started
            session.rollback()
    finally:
        engine.dispose()
    return elapsed


# -- processes -----------------------------------------------------------------------------


@contextmanager
def worker_process(env: dict[str, str], threads: int) -> Iterator[None]:
    """`pawpost worker` in its own process group; SIGTERM at the end."""
    entry = "from pawpost.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", entry, "worker", "--workers", str(threads)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        time.sleep(2)
        if process.poll() is not None:
            raise SystemExit("pawpost worker did not start")
        yield
    finally:
        stop(process)


class Receiver:
    """A local webhook receiver: answers 204 and notes when each event arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.perf_counter()
                event = json.loads(body)
                key = str(event["data"].get("message_id") or self.headers["webhook-id"])
                with receiver.lock:
                    receiver.arrivals.setdefault(key, at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pawpost"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrivals) >= count:
                    return
            time.sleep(0.01)
        raise SystemExit(f"the receiver got {len(self.arrivals)} of {count} deliveries in {timeout:g} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _call(client: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One JSON call; a keep-alive connection the server closed meanwhile is opened again and
    the call repeated (the same Idempotency-Key: it acts once)."""
    payload = json.dumps(body) if body is not None else None
    headers = {**client.headers, "Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(8)}
    for attempt in (1, 2):
        try:
            client.connection.request(method, path, body=payload, headers=headers)
            answer = client.connection.getresponse()
            data = answer.read()
            return answer.status, json.loads(data) if data else None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            client.connection.close()
            client.connection = http.client.HTTPConnection(client.host, client.port, timeout=client.connection.timeout)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# -- the three measures ------------------------------------------------------------------


def _slice(document: dict[str, Any], share: float) -> dict[str, Any]:
    families = document["families"][: max(1, int(len(document["families"]) * share))]
    kept = {f["id"] for f in families}
    return {**document, "families": families, "appointments": [a for a in document["appointments"] if a["family"] in kept]}


def bench_upsert(host: str, port: int, key: str, url: str, business_id: int, document: dict[str, Any]) -> dict[str, Any]:
    """New families through the API (the target), a tenth of them in process (the baseline),
    then that tenth through the API again, every family known (the update path)."""
    tenth = _slice(document, 0.1)
    remove_synced_families(url, business_id)
    try:
        baseline = upsert_in_process(url, tenth)
        progress(f"baseline: {len(tenth['families'])} families in process in {baseline:.1f} s")
        client = Client(host, port)
        client.connection.timeout = 1800
        client.headers = {"Authorization": f"Bearer {key}"}
        started = time.perf_counter()
        status, answer = _call(client, "POST", "/api/v1/directory", document)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"bulk upsert answered {status}: {str(answer)[:500]}")
        progress(f"bulk upsert (created): {elapsed:.1f} s")
        started = time.perf_counter()
        status, again = _call(client, "POST", "/api/v1/directory", tenth)
        updated = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"second upsert answered {status}: {str(again)[:500]}")
    finally:
        remove_synced_families(url, business_id)
    count, tenth_count = len(document["families"]), len(tenth["families"])
    return {
        "families": count, "appointments": len(document["appointments"]),
        "body_megabytes": round(len(json.dumps(document)) / 1e6, 1),
        "api_seconds": round(elapsed, 2), "api_ms_per_family": round(elapsed / count * 1000, 2), "answer": answer,
        "baseline_families": tenth_count, "baseline_in_process_seconds": round(baseline, 2),
        "baseline_ms_per_family": round(baseline / tenth_count * 1000, 2),
        "ratio_per_family": round((elapsed / count) / (baseline / tenth_count), 2),
        "known_families_again": tenth_count, "known_again_seconds": round(updated, 2),
        "known_again_ms_per_family": round(updated / tenth_count * 1000, 2), "known_again_answer": again,
        "target_seconds": TARGETS["upsert_seconds"], "meets_target": elapsed < TARGETS["upsert_seconds"],
    }


def bench_reads(host: str, port: int, seed: dict[str, Any], keys: list[str], url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from threads.db import make_engine

    rng = random.Random(11)
    threads = [int(seed["typical_thread_id"])] + [rng.randint(1, int(seed["families"])) for _ in range(200)]
    engine = make_engine(url)
    try:
        with engine.connect() as connection:  # a cursor in the middle of the longest thread
            middle = connection.execute(
                text("SELECT id FROM messages WHERE thread_id = :t ORDER BY id OFFSET :n LIMIT 1"),
                {"t": seed["long_thread_id"], "n": int(seed["long_thread_messages"]) // 2},
            ).scalar_one()
    finally:
        engine.dispose()
    cases = [
        Case("healthz (baseline: SELECT 1 through the stack)", "anonymous", ["/healthz"]),
        Case("portal thread page (newest 50; baseline: same data, no API layer)", "senior", [f"/threads/{t}" for t in threads]),
        Case("API thread messages (first 50)", "api", [f"/api/v1/threads/{t}/messages?limit=50" for t in threads]),
        Case("API thread messages (longest thread, cursor mid-way)", "api", [f"/api/v1/threads/{seed['long_thread_id']}/messages?limit=50&cursor={middle}"]),
    ]
    sessions = {"senior": (str(seed["senior_email"]), str(seed["password"]))}
    samples = run_load(host, port, sessions, cases, args.n, args.senders, args.rate, bearer={"api": keys})
    wall = samples.pop("_wall_seconds")[0]
    baseline = statistics.median(samples[cases[0].name])
    summary = {
        name: {"p50_ms": round(statistics.median(v), 1), "p95_ms": round(_p95(v), 1), "p99_ms": _ms(v, 0.99), "ratio_p50_to_healthz": round(statistics.median(v) / baseline, 1)}
        for name, v in samples.items()
    }
    worst = max(summary[c.name]["p95_ms"] for c in cases[2:])
    return {
        "open_loop": f"{args.rate:g} requests/s from {args.senders} clients, {args.n} per case",
        "requests_per_second": round(sum(len(v) for v in samples.values()) / wall, 1),
        "cases": summary, "target_p95_ms": TARGETS["read_p95_ms"], "meets_target": worst < TARGETS["read_p95_ms"],
    }


def bench_webhooks(host: str, port: int, key: str, url: str, settings_env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    from outbound.webhooks import send, signed_request
    from threads.webhooks import new_secret

    receiver = Receiver()
    try:
        client = Client(host, port)
        client.headers = {"Authorization": f"Bearer {key}"}
        status, endpoint = _call(client, "POST", "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["message.created"]})
        if status != 201:
            raise SystemExit(f"registering the endpoint answered {status}: {endpoint}")
        # Baseline: the same kind of signed POST, straight from here (new connection each, as the worker).
        secret, floor = new_secret(), []
        for n in range(args.webhooks):
            started = time.perf_counter()
            outcome = send(signed_request(receiver.url, secret, f"msg_floor{n}", json.dumps({"data": {"message_id": f"floor-{n}"}}), time.time()), development=True)
            floor.append((time.perf_counter() - started) * 1000)
            assert outcome.status_code == 204
        # Latency: one message every 1/rate s through the API; from its POST to the receiver's 2xx.
        thread = int(json.loads(SEED_FILE.read_text())["typical_thread_id"])
        sent: dict[str, float] = {}
        begin = time.perf_counter()
        for n in range(args.webhooks):
            time.sleep(max(0.0, begin + n / args.webhook_rate - time.perf_counter()))
            started = time.perf_counter()
            status, message = _call(client, "POST", f"/api/v1/threads/{thread}/messages", {"as_business": True, "text": f"Bench update {n}"})
            if status != 201:
                raise SystemExit(f"posting answered {status}: {message}")
            sent[str(message["id"])] = started
        receiver.wait_for(len(sent) + args.webhooks, timeout=60)
        latencies = [(receiver.arrivals[mid] - at) * 1000 for mid, at in sent.items()]
        # Throughput: a burst of test events committed at once, pushed to the worker.
        burst = _burst(url, settings_env, int(endpoint["id"]), args.burst)
        committed = time.perf_counter()
        _push(settings_env, burst)
        receiver.wait_for(len(sent) + args.webhooks + args.burst, timeout=120)
        last = max(receiver.arrivals[f"test-{n}"] for n in range(args.burst))
        _call(client, "DELETE", f"/api/v1/webhook-endpoints/{endpoint['id']}")
    finally:
        receiver.close()
    return {
        "messages": args.webhooks, "rate_per_second": args.webhook_rate,
        "commit_to_2xx_p50_ms": _ms(latencies, 0.5), "commit_to_2xx_p99_ms": _ms(latencies, 0.99),
        "direct_post_p50_ms": _ms(floor, 0.5), "direct_post_p99_ms": _ms(floor, 0.99),
        "burst": args.burst, "burst_deliveries_per_second": round(args.burst / (last - committed), 1),
        "target_p99_ms": TARGETS["webhook_p99_ms"], "meets_target": _ms(latencies, 0.99) < TARGETS["webhook_p99_ms"],
    }


def _burst(url: str, env: dict[str, str], endpoint_id: int, count: int) -> list[int]:
    """`count` webhook.test deliveries committed in one transaction (as many events at once)."""
    from threads.db import make_engine, make_session_factory
    from threads.models import WebhookEndpoint
    from threads.types import utcnow
    from threads.webhooks import emit_event

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            endpoint = session.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None
            ids: list[int] = []
            for n in range(count):
                ids += emit_event(session, endpoint.business_id, "webhook.test", {"message_id": f"test-{n}"}, utcnow(), endpoint_ids=[endpoint_id])
        return ids
    finally:
        engine.dispose()


def _push(env: dict[str, str], delivery_ids: list[int]) -> None:
    """After the commit, one queue task per delivery, as the API does."""
    from outbound.queue import configure_queue
    from outbound.tasks import push_webhooks
    from pawpost.settings import Settings

    configure_queue(Settings.from_env(env))
    push_webhooks(delivery_ids)


# -- report --------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> int:
    from threads import migrate

    if not SEED_FILE.exists():
        raise SystemExit(f"{SEED_FILE} is missing: run `python -m bench.seed` first")
    seed = json.loads(SEED_FILE.read_text())
    url = database_url(args.database_url) if args.database_url else str(seed["database_url"])
    migrate.upgrade(url)
    env = {
        "PAWPOST_DATABASE_URL": url,
        "PAWPOST_QUEUE_URL": args.queue_url,
        "PAWPOST_SECRET_KEY": SECRET_KEY,
        "PAWPOST_DATA_DIR": tempfile.mkdtemp(prefix="pawpost-bench-api-"),
        "PAWPOST_DEV": "1",  # http:// to the loopback receiver
        "PAWPOST_NOTIFY_DELAY_SECONDS": "86400",  # no parent digests mid-run
    }
    import redis

    redis.Redis.from_url(args.queue_url).flushdb()  # this bench's own queue database
    keys = make_keys(url, int(seed["business_id"]), READ_KEYS)
    document = directory_document(url, int(seed["business_id"]), date.fromisoformat(str(seed["business_today"])), args.families, args.appointments)
    workers = args.workers or max(2, (os.cpu_count() or 1) * 2)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    with production_server(env, workers, args.threads) as (host, port), worker_process(env, args.worker_threads):
        progress("servers up")
        upsert = bench_upsert(host, port, keys[0], url, int(seed["business_id"]), document)
        progress(f"bulk upsert: {json.dumps(upsert)}")
        reads = bench_reads(host, port, seed, keys, url, args)
        progress(f"reads: {json.dumps(reads)}")
        hooks = bench_webhooks(host, port, keys[0], url, env, args)
        progress("webhooks done")
    report = {
        "measured_at": datetime.now(UTC).isoformat(),
        "command": "python -m bench.api " + " ".join(sys.argv[1:]),
        "server": f"pawpost web (gunicorn gthread): {workers} workers x {args.threads} threads; pawpost worker: {args.worker_threads} threads",
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
        "data": {k: seed[k] for k in ("families", "messages", "long_thread_messages") if k in seed},
        "bulk_upsert": upsert,
        "thread_messages_read": reads,
        "webhooks": hooks,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: the URL bench/seed.py recorded")
    parser.add_argument("--queue-url", default="redis://127.0.0.1:6379/14", help="the web's and worker's queue (flushed first)")
    parser.add_argument("--families", type=int, default=10_000, help="new families in the upsert (default 10,000)")
    parser.add_argument("--appointments", type=int, default=13_000)
    parser.add_argument("-n", type=int, default=300, help="requests per read case (default 300)")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests per second (default 100, as bench/portal.py)")
    parser.add_argument("--senders", type=int, default=16, help="clients sharing the open loop (default 16)")
    parser.add_argument("--webhooks", type=int, default=200, help="messages posted for the latency figure")
    parser.add_argument("--webhook-rate", type=float, default=20.0, help="messages a second for the latency figure")
    parser.add_argument("--burst", type=int, default=1000, help="deliveries committed at once for the throughput figure")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: 2 per CPU)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--worker-threads", type=int, default=4, help="pawpost worker threads (default 4)")
    return benchmark(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
