"""Score inbound.reply_text against the shared reply-extraction corpus, beside a baseline.

Usage: .venv/bin/python -m bench.reply_corpus [--corpus PATH] [-v]

Scoring follows the corpus README: scope ``quotes`` is judged on
``Reply.quote_stripped``, ``quotes+signature`` and ``signature`` on
``Reply.visible``; ``eml`` cases go through ``parse_email`` first. A case passes
when its exact expectation (if any), every phrase and its time bound hold.

A few upstream expectations contradict a Pawpost product rule (DESIGN.md, "Email
contract"); those cases are scored against Pawpost's rule, listed in ``PRODUCT_RULES``
with the rule and the text Pawpost must give, and counted on a line of their own:

- talon returns a mail that is nothing but a quote unchanged; Pawpost posts no
  quoted history at all when no new words are left (issue 11, point 1).
- talon's signature extractor counts a closing ("Thanks!", "Thanks in advance, Bob",
  a bare name) as signature; Pawpost keeps a short closing with the message and trims
  only `-- ` blocks, device lines and a name followed by contact details (point 5).

The baseline, scored in the same run by the same rules, is mail-parser-reply alone
(all its languages) on the same plain text Pawpost's extractor starts from (an
HTML-only body converted by the same `html_to_text`). It comes with the `bench`
extra (`make install` installs it); without it, only Pawpost's column is printed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inbound.parse import parse_email  # noqa: E402
from inbound.reply_text import extract_reply, html_to_text  # noqa: E402

try:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES
except ImportError:  # the bench extra is not installed: no baseline column
    EmailReplyParser = None  # type: ignore[assignment,misc]


_QUOTE_ONLY = "nothing but quoted history: no new words, nothing posted"
_CLOSING = "a short closing stays with the message"
# case id -> (the text Pawpost must give, the product rule that differs from upstream)
PRODUCT_RULES: dict[str, tuple[str, str]] = {
    "talon-hq-readable_html_empty": ("", _QUOTE_ONLY),
    "talon-sigfix-short_url": (
        "Simone,\n\nIt is 'example.com'. Please let me know what you see.\n\n"
        "Thank you,\nNoam",
        _CLOSING,
    ),
    "talon-sig-signature_words_1": ("Hey!\n\nThanks!\nRoman", _CLOSING),
    "talon-sig-signature_cant_start_from_first_line": ("Thanks,\n\nBlah\n\nregards\n\nJohn Doe", _CLOSING),
    "talon-sigml-message_shorter_SIGNATURE_MAX_LINES": (
        "Call me ASAP, please.This is about the last changes you deployed.\n\nThanks in advance,\nBob",
        _CLOSING,
    ),
    "talon-sigml-text_line_in_signature": (
        "Call me ASAP, please.This is about the last changes you deployed.\n\nThanks in advance,\n"
        "some text which doesn't seem to be a signature at all\nBob",
        _CLOSING,
    ),
    "talon-sigml-long_line_in_signature": (
        "Call me ASAP, please.This is about the last changes you deployed.\n\nThanks in advance,\n"
        "some long text here which doesn't seem to be a signature at all\nBob",
        _CLOSING,
    ),
}


def with_product_rule(case: dict) -> dict:
    """The case as Pawpost scores it: upstream's, or Pawpost's rule where they differ."""
    if case["id"] not in PRODUCT_RULES:
        return case
    expected, _ = PRODUCT_RULES[case["id"]]
    return {**case, "expected": expected, "must_contain": [], "must_not_contain": []}


@dataclass(frozen=True)
class Inputs:
    """What an extractor is given for one case: the text and HTML bodies and the sender."""

    text: str | None
    html: str | None
    sender: str | None


def inputs(case: dict, corpus: Path) -> Inputs:
    path = corpus / case["file"]
    if case["format"] == "eml":
        parsed = parse_email(path.read_bytes())
        sender = " ".join(filter(None, [parsed.sender_name, parsed.sender_address]))
        return Inputs(parsed.text, parsed.html, sender or None)
    if case["format"] == "html":
        return Inputs(None, path.read_text(encoding="utf-8"), None)
    return Inputs(path.read_text(encoding="utf-8"), None, case.get("sender") or None)


def pawpost(case: dict, given: Inputs) -> str:
    reply = extract_reply(given.text, given.html, sender=given.sender)
    return reply.quote_stripped if case["scope"] == "quotes" else reply.visible


def baseline(case: dict, given: Inputs) -> str:
    plain = given.text if given.text else html_to_text(given.html or "")
    return EmailReplyParser(languages=list(MAIL_LANGUAGES)).parse_reply(plain) or ""


def timed(extractor: Callable[[dict, Inputs], str], case: dict, given: Inputs) -> tuple[str, float]:
    started = time.perf_counter()
    out = extractor(case, given)
    return out, time.perf_counter() - started


def norm(text: str) -> str:
    return " ".join(text.split())


def squash(text: str) -> str:
    return "".join(text.split())


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


class Totals:
    """Per scope: cases, passed, cases with an exact expectation, exact ones met, phrases met."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])

    def add(self, case: dict, exact_ok: bool, phrases_ok: bool) -> None:
        for key in ("all", case["scope"]):
            row = self.rows[key]
            row[0] += 1
            row[1] += exact_ok and phrases_ok
            row[2] += case.get("expected") is not None
            row[3] += exact_ok and case.get("expected") is not None
            row[4] += phrases_ok

    def rate(self, key: str) -> float:
        cases, passed = self.rows[key][:2]
        return 100.0 * passed / cases

    def scopes(self) -> list[str]:
        return ["all"] + sorted(k for k in self.rows if k != "all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("-v", "--verbose", action="store_true", help="list Pawpost's failing cases with a diff")
    args = parser.parse_args(argv)
    listing = args.corpus / "cases.jsonl"
    if not listing.is_file():
        parser.error(f"no corpus at {args.corpus} (cases.jsonl missing): pass --corpus PATH")
    cases = [json.loads(line) for line in listing.read_text().splitlines() if line.strip()]
    ours, theirs = Totals(), Totals()
    failures = []
    for case in cases:
        started = time.perf_counter()
        given = inputs(case, args.corpus)  # MIME parsing counts towards a case's time bound
        parsing = time.perf_counter() - started
        out, seconds = timed(pawpost, case, given)
        exact_ok, phrases_ok, problems = check(with_product_rule(case), out, parsing + seconds)
        ours.add(case, exact_ok, phrases_ok)
        if problems:
            failures.append((case, out, problems))
        if EmailReplyParser is not None:
            base_out, base_seconds = timed(baseline, case, given)
            theirs.add(case, *check(case, base_out, parsing + base_seconds)[:2])

    header = f"{'scope':<18} {'cases':>6} {'pawpost':>9} {'exact':>11} {'phrases':>11}"
    print(header + (f" {'mail-parser-reply':>18} {'ratio':>6}" if EmailReplyParser is not None else ""))
    for key in ours.scopes():
        cases_n, _, exact_n, exact_ok_n, phrase_n = ours.rows[key]
        line = f"{key:<18} {cases_n:>6} {ours.rate(key):>8.1f}% {exact_ok_n:>5}/{exact_n:<5} {phrase_n:>5}/{cases_n:<5}"
        if EmailReplyParser is not None:
            base = theirs.rate(key)
            line += f" {base:>17.1f}% " + (f"{ours.rate(key) / base:>5.2f}x" if base else "     -")
        print(line)
    ruled = [case for case in cases if case["id"] in PRODUCT_RULES]
    print(f"{len(ruled)} cases scored by Pawpost's product rule where upstream differs (the baseline by upstream's):")
    for case in ruled:
        print(f"  {case['id']}: {PRODUCT_RULES[case['id']][1]}")
    if EmailReplyParser is None:
        print("(no baseline: mail-parser-reply is not installed; `pip install -e .[bench]`)")
    if args.verbose:
        for case, out, problems in failures:
            print(f"\nFAIL {case['id']} ({case['scope']}): {'; '.join(problems)}")
            if case.get("expected") is not None:
                diff = difflib.unified_diff(
                    case["expected"].splitlines(), out.splitlines(), "expected", "got", lineterm="", n=1
                )
                print("\n".join(list(diff)[:30]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
