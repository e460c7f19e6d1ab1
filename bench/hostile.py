"""CPU and memory per hostile email for parse + classify + extract, at growing sizes.

Usage: .venv/bin/python -m bench.hostile [--sizes 100K,1M,10M,25M] [--shapes a,b]

Each (shape, size) runs in a fresh subprocess: the CPU seconds (user + system) of
``parse_email`` + ``classify`` + ``extract_reply`` and how much the process's peak
resident memory grew while doing it (``ru_maxrss``: libxml2's C allocations count too,
which tracemalloc would not see; the raw email itself is already in memory before). The baseline in
the same run is a plain reply of the same size (text repeated), so the ratio column shows
what the hostile shape costs beyond its bytes. Growth should be linear: CPU per MB stays
flat from 1 MB to 25 MB; every email must stay within 2 s of CPU (DESIGN.md, "Bounded").
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 2.0
HEAD = (
    "From: Emma Johnson <emma@parents.example>\r\nTo: reply+abc@reply.test\r\n"
    "Subject: Re: Bella\r\nMessage-ID: <hostile-{n}@parents.example>\r\nMIME-Version: 1.0\r\n"
)


def _fill(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit))


def plain(size: int) -> bytes:
    """A plain reply of the same size: the baseline."""
    body = _fill("Bella loved her walk today, thank you so much for the photos!\r\n", size)
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def _html(body: str) -> bytes:
    return (HEAD + "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hi there</p>" + body).encode()


def quadratic_html(size: int) -> bytes:
    """An unclosed attribute repeated: html.parser rescanned it from the start each step."""
    return _html(_fill("<a href='", size))


def deep_html(size: int) -> bytes:
    """Nested divs (50,000 of them raised RecursionError)."""
    n = size // 11
    return _html("<div>" * n + "x" + "</div>" * n)


def many_elements(size: int) -> bytes:
    """Small paragraphs, hundreds of thousands of elements."""
    return _html(_fill("<p>Hello <b>there</b></p>", size))


def quote_markers(size: int) -> bytes:
    """Quote containers and header blocks over and over: every HTML rule fires."""
    unit = (
        "<div class='gmail_quote'>On Mon wrote:<blockquote type='cite'>x</blockquote></div>"
        "<div style='border-top:solid 1pt'><p>From: a</p><p>Sent: b</p></div>"
    )
    return _html(_fill(unit, size))


def huge_text(size: int) -> bytes:
    """One long quoted reply: every line a quote marker or attribution candidate."""
    unit = "> On Mon, 3 Jun 2024 at 09:12, Ann <a@b.example> wrote:\r\nFrom: x\r\n-- \r\nSent from my iPhone\r\n"
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n" + _fill(unit, size)).encode()


def header_lines(size: int) -> bytes:
    """A text body of nothing but header-block lines: one long run of splitters (a regex
    search for "splitter, then text" rescanned it from each line: 4.9 s at 320 KB)."""
    unit = "From: x\r\nDate: y\r\n"
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n\r\n" + _fill(unit, size)).encode()


def many_parts(size: int) -> bytes:
    """Thousands of small MIME parts (a 100-byte part per ~140 bytes of email)."""
    part = "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    count = max(1, size // len(part))
    body = part * count + "--b--\r\n"
    return (HEAD + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body).encode()


def deep_multipart(size: int) -> bytes:
    """Multiparts nested inside each other, as deep as the size allows."""
    depth = max(1, size // 80)
    opening = "".join(f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n' for i in range(depth))
    closing = "".join(f"--b{i}--\r\n" for i in range(depth, -1, -1))
    inner = f"--b{depth}\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    return (HEAD + 'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n' + opening + inner + closing).encode()


def huge_headers(size: int) -> bytes:
    """A header block of the whole size: thousands of Received and long folded fields."""
    lines = _fill("Received: from a.example by b.example; Mon, 3 Jun 2024 09:12:00 +0000\r\n", size // 2)
    folded = "X-Long: " + _fill("word \r\n ", size // 2) + "\r\n"
    return (HEAD + lines + folded + "Content-Type: text/plain\r\n\r\nHello\r\n").encode()


def big_attachment(size: int) -> bytes:
    """A photo of the whole size (base64), the common big email."""
    data = base64.encodebytes(b"\xff\xd8\xff\xe0" * (size * 3 // 16)).decode().replace("\n", "\r\n")
    return (
        HEAD + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPhoto!\r\n'
        '--b\r\nContent-Type: image/jpeg; name="bella.jpg"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + data + "--b--\r\n"
    ).encode()


SHAPES = {
    f.__name__: f
    for f in (plain, quadratic_html, deep_html, many_elements, quote_markers, huge_text, header_lines, many_parts,
              deep_multipart, huge_headers, big_attachment)
}


def measure(shape: str, size: int) -> dict:
    """Run in the child: build the email, then parse + classify + extract it."""
    import resource

    sys.path.insert(0, str(REPO))
    from inbound.classify import classify
    from inbound.parse import parse_email
    from inbound.reply_text import extract_reply

    raw = SHAPES[shape](size)

    def work() -> tuple[int, bool]:
        parsed = parse_email(raw)
        classify(parsed, reply_domain="reply.test")
        reply = extract_reply(parsed.text, parsed.html, sender=parsed.sender_name)
        return len(reply.visible), getattr(reply, "truncated", False)  # (older code has no flag)

    reply = extract_reply(None, "<p>warm</p>")  # imports out of the measure
    classify(parse_email(plain(1000)), reply_domain="reply.test")
    del reply
    before = resource.getrusage(resource.RUSAGE_SELF)
    visible, truncated = work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = (after.ru_maxrss - before.ru_maxrss) * 1024  # kilobytes on Linux
    return {"bytes": len(raw), "cpu": cpu, "peak": peak, "visible": visible, "truncated": truncated}


def run_child(shape: str, size: int) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.hostile", "--child", shape, str(size)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1], "wall": time.perf_counter() - started}
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_size(text: str) -> int:
    units = {"K": 1000, "M": 1000_000}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100K,1M,10M,25M")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    shapes = args.shapes.split(",")
    baseline = {size: run_child("plain", size) for size in sizes}
    print(f"{'shape':<16} {'size':>6} {'cpu s':>7} {'µs/KB':>7} {'x plain':>8} {'RSS+ MB':>8} {'visible':>8}  ok")
    worst = 0.0
    for shape in shapes:
        for size in sizes:
            row = baseline[size] if shape == "plain" else run_child(shape, size)
            label = f"{size / 1e6:g}M" if size >= 1e6 else f"{size // 1000}K"
            if "error" in row:
                print(f"{shape:<16} {label:>6} FAILED: {row['error']}")
                worst = float("inf")
                continue
            base = baseline[size].get("cpu") or 1e-9
            per_kb = row["cpu"] / (row["bytes"] / 1000) * 1e6
            worst = max(worst, row["cpu"])
            ok = "yes" if row["cpu"] <= BUDGET_SECONDS else "NO"
            print(
                f"{shape:<16} {label:>6} {row['cpu']:>7.2f} {per_kb:>7.1f} {row['cpu'] / base:>8.2f} "
                f"{row['peak'] / 1e6:>8.1f} {row['visible']:>8}{'+' if row['truncated'] else ' '} {ok}"
            )
    print(f"worst CPU: {worst:.2f} s (budget {BUDGET_SECONDS} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
