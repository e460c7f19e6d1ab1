"""`pawpost smtp`'s memory under big concurrent mail: many 24 MB emails at once.

Starts a real `pawpost smtp` (PostgreSQL, a Redis queue no worker reads), then N
clients each deliver one ~24 MB plain-text reply at the same moment, as MTAs do: with
`SIZE=` declared, and trying again a second later after a `4xx` (the server defers what
is beyond its bounds). Samples the server's resident memory every 50 ms.

Prints: how many were accepted and after how many deferrals, the peak resident memory
(VmHWM) and the resident memory 5 s after the last answer (what the process keeps).

    .venv/bin/python -m bench.smtp_memory [--database-url postgresql://postgres@127.0.0.1:5432/bench_inbound]
        [--queue-url redis://127.0.0.1:6379/13] [--emails 45] [--megabytes 24]

The database is emptied and migrated first, the queue's Redis db flushed (that db only).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from bench.database import prepare_database
from bench.inbound import DEFAULT_QUEUE_URL, DEFAULT_URL, REPLY_DOMAIN, count_by_outcome, flush_queue, seed, start_process, stop_process

RETRY_SECONDS = 1.0
MAX_TRIES = 120


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the process, in kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def big_reply(sender: str, name: str, to: str, n: int, megabytes: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>"
    message["To"] = to
    message["Subject"] = "Re: Bella's week"
    message["Message-ID"] = f"<big-{n}-{time.time_ns()}@parents.test>"
    line = f"Reply {n}: Bella had a lovely week and we wrote it all down for you, every walk.\n"
    message.set_content(line * (megabytes * 1024 * 1024 // len(line)), cte="7bit")
    return message.as_bytes(policy=SMTP)


def deliver(port: int, sender: str, to: str, raw: bytes, start: threading.Barrier, results: list[tuple[int, int]]) -> None:
    """Send once the barrier opens; on a 4xx try again a second later. Records (code, deferrals)."""
    start.wait()
    deferrals = 0
    for _ in range(MAX_TRIES):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
                client.sendmail(sender, [to], raw)
            results.append((250, deferrals))
            return
        except smtplib.SMTPResponseException as error:
            code = error.smtp_code
        except smtplib.SMTPRecipientsRefused as error:
            code = next(iter(error.recipients.values()))[0]
        except (smtplib.SMTPServerDisconnected, OSError):
            code = 421
        if code < 400 or code >= 500:
            results.append((code, deferrals))
            return
        deferrals += 1
        time.sleep(RETRY_SECONDS)
    results.append((0, deferrals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("PAWPOST_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--queue-url", default=DEFAULT_QUEUE_URL)
    parser.add_argument("--emails", type=int, default=45)
    parser.add_argument("--megabytes", type=int, default=24)
    args = parser.parse_args()

    prepare_database(args.database_url)
    flush_queue(args.queue_url)
    people = seed(args.database_url)
    emails = [big_reply(address, name, to, n, args.megabytes) for n, (name, address, to) in enumerate(people[: args.emails])]

    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(
            os.environ,
            PAWPOST_DATA_DIR=data_dir,
            PAWPOST_DATABASE_URL=args.database_url,
            PAWPOST_QUEUE_URL=args.queue_url,
            PAWPOST_REPLY_DOMAIN=REPLY_DOMAIN,
            PAWPOST_SMTP_LISTEN="127.0.0.1:0",
        )
        server, port = start_process([str(Path(sys.executable).with_name("pawpost")), "smtp"], env)
        idle_kb = _memory_kb(server.pid)[0]
        results: list[tuple[int, int]] = []
        start = threading.Barrier(len(emails))
        clients = [
            threading.Thread(target=deliver, args=(port, people[n][1], people[n][2], raw, start, results))
            for n, raw in enumerate(emails)
        ]
        peak_rss = 0
        began = time.perf_counter()
        for client in clients:
            client.start()
        while any(c.is_alive() for c in clients):
            peak_rss = max(peak_rss, _memory_kb(server.pid)[0])
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        time.sleep(5)
        after_kb, hwm_kb = _memory_kb(server.pid)
        stop_process(server)
    stored = count_by_outcome(args.database_url)
    flush_queue(args.queue_url)

    accepted = sum(1 for code, _ in results if code == 250)
    print(f"{len(emails)} emails of ~{len(emails[0]) / 2**20:.0f} MB at once into pawpost smtp (PostgreSQL)")
    print(
        f"accepted {accepted}/{len(emails)} in {seconds:.1f} s after {sum(d for _, d in results)} deferrals (4xx, retried); "
        f"other answers: {sorted(code for code, _ in results if code != 250)}"
    )
    print(f"server memory: idle {idle_kb / 1024:.0f} MB, peak {hwm_kb / 1024:.0f} MB (sampled {peak_rss / 1024:.0f} MB), 5 s after {after_kb / 1024:.0f} MB")
    print(f"stored: {stored}")


if __name__ == "__main__":
    main()
