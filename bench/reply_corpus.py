"""Score inbound.reply_text against the shared reply-extraction corpus.

Usage: .venv/bin/python bench/reply_corpus.py [--corpus PATH] [-v]

Scoring follows the corpus README: scope ``quotes`` is judged on
``Reply.quote_stripped``, ``quotes+signature`` and ``signature`` on
``Reply.visible``; ``eml`` cases go through ``parse_email`` first. A case passes
when its exact expectation (if any), every phrase and its time bound hold.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inbound.parse import parse_email  # noqa: E402
from inbound.reply_text import Reply, extract_reply  # noqa: E402


def norm(text: str) -> str:
    return " ".join(text.split())


def squash(text: str) -> str:
    return "".join(text.split())


def run_case(case: dict, corpus: Path) -> tuple[Reply, float]:
    path = corpus / case["file"]
    started = time.perf_counter()
    if case["format"] == "eml":
        parsed = parse_email(path.read_bytes())
        sender = " ".join(filter(None, [parsed.sender_name, parsed.sender_address]))
        reply = extract_reply(parsed.text, parsed.html, sender=sender or None)
    elif case["format"] == "html":
        reply = extract_reply(None, path.read_text(encoding="utf-8"))
    else:
        reply = extract_reply(path.read_text(encoding="utf-8"), None, sender=case.get("sender") or None)
    return reply, time.perf_counter() - started


def check(case: dict, out: str, seconds: float) -> tuple[bool, bool, list[str]]:
    """Return (exact_ok, phrases_ok, problems)."""
    problems: list[str] = []
    remove = case.get("whitespace") == "remove"
    fit = squash if remove else norm
    exact_ok = True
    if case.get("expected") is not None and fit(out) != fit(case["expected"]):
        exact_ok = False
        problems.append("exact mismatch")
    got = fit(out)
    phrases_ok = True
    for phrase in case.get("must_contain", []):
        if fit(phrase) not in got:
            phrases_ok = False
            problems.append("missing %r" % phrase)
    for phrase in case.get("must_not_contain", []):
        if fit(phrase) in got:
            phrases_ok = False
            problems.append("still has %r" % phrase)
    if case.get("max_seconds") is not None and seconds > case["max_seconds"]:
        phrases_ok = False
        problems.append("took %.2fs > %ss" % (seconds, case["max_seconds"]))
    return exact_ok, phrases_ok, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("-v", "--verbose", action="store_true", help="list failing cases with a diff")
    args = parser.parse_args(argv)
    cases = [json.loads(line) for line in (args.corpus / "cases.jsonl").read_text().splitlines() if line.strip()]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # cases, pass, exact, exact_ok, phrase_ok
    failures = []
    for case in cases:
        reply, seconds = run_case(case, args.corpus)
        out = reply.quote_stripped if case["scope"] == "quotes" else reply.visible
        exact_ok, phrases_ok, problems = check(case, out, seconds)
        for key in ("all", case["scope"]):
            row = totals[key]
            row[0] += 1
            row[1] += exact_ok and phrases_ok
            row[2] += case.get("expected") is not None
            row[3] += exact_ok and case.get("expected") is not None
            row[4] += phrases_ok
        if problems:
            failures.append((case, out, problems))
    print("%-18s %6s %9s %13s %13s" % ("scope", "cases", "pass", "exact", "phrases"))
    for key in ["all"] + sorted(k for k in totals if k != "all"):
        cases_n, passed, exact_n, exact_ok_n, phrase_n = totals[key]
        print(
            "%-18s %6d %8.1f%% %7d/%-5d %7d/%-5d"
            % (key, cases_n, 100.0 * passed / cases_n, exact_ok_n, exact_n, phrase_n, cases_n)
        )
    if args.verbose:
        for case, out, problems in failures:
            print("\nFAIL %s (%s): %s" % (case["id"], case["scope"], "; ".join(problems)))
            if case.get("expected") is not None:
                diff = difflib.unified_diff(
                    case["expected"].splitlines(), out.splitlines(), "expected", "got", lineterm="", n=1
                )
                print("\n".join(list(diff)[:30]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
