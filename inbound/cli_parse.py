"""``pawpost parse FILE.eml...``: what Pawpost would make of an email, no database."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from inbound.classify import Kind, classify
from inbound.parse import UnparseableEmail, parse_email
from inbound.reply_text import extract_reply

logger = logging.getLogger(__name__)


def describe(path: Path, reply_domain: str) -> dict[str, Any]:
    """The JSON-able verdict for one .eml file."""
    result: dict[str, Any] = {
        "file": str(path),
        "kind": "reject",
        "text": "",
        "trimmed": "",
        "truncated": False,
        "from": None,
        "message_id": None,
        "in_reply_to": None,
        "references": [],
        "attachments": [],
        "reason": None,
    }
    try:
        parsed = parse_email(path.read_bytes())
    except (UnparseableEmail, OSError) as exc:
        result["reason"] = "unparseable: %s" % exc
        return result
    sender = " ".join(filter(None, [parsed.sender_name, parsed.sender_address]))
    reply = extract_reply(parsed.text, parsed.html, sender=sender or None)
    result.update(
        {
            "text": reply.visible,
            "trimmed": reply.trimmed,
            "truncated": reply.truncated or parsed.truncated,
            "from": parsed.sender_address,
            "message_id": parsed.message_id,
            "in_reply_to": parsed.in_reply_to,
            "references": list(parsed.references),
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in parsed.attachments
            ],
        }
    )
    verdict = classify(parsed, reply_domain=reply_domain)
    if verdict.kind is Kind.LOOP:
        result["reason"] = "loop: %s" % verdict.reason
    elif verdict.kind is Kind.BOUNCE:
        result["kind"] = "bounce"
        result["reason"] = verdict.reason
        result["failed_recipients"] = [
            {"address": r.address, "status": r.status, "permanent": r.permanent}
            for r in verdict.failed_recipients
        ]
        # What the report says about a recipient it does not name (the signed VERP
        # address of a real bounce names it): 5.x.x would mark that address.
        result["report_status"] = verdict.status
    elif verdict.kind is Kind.AUTO_REPLY:
        result["kind"] = "auto_reply"
        result["reason"] = verdict.reason
        result["summary"] = verdict.summary
    elif not parsed.sender_address:
        result["reason"] = "no usable sender address"
    elif not reply.visible and not parsed.attachments:
        result["reason"] = "empty reply"
    else:
        result["kind"] = "reply"
    return result


@click.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--reply-domain",
    default="reply.localhost",
    show_default=True,
    envvar="PAWPOST_REPLY_DOMAIN",
    help="Pawpost's reply domain; mail from it is a loop.",
)
def parse_command(files: tuple[Path, ...], as_json: bool, reply_domain: str) -> None:
    """Show what Pawpost makes of each .eml file (nothing is stored)."""
    for path in files:
        result = describe(path, reply_domain)
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
            continue
        click.echo("== %s: %s" % (result["file"], result["kind"]))
        for label in ("from", "message_id", "in_reply_to", "reason", "summary"):
            if result.get(label):
                click.echo("%s: %s" % (label, result[label]))
        if result["references"]:
            click.echo("references: %s" % " ".join(result["references"]))
        for attachment in result["attachments"]:
            click.echo("attachment: %(filename)s (%(content_type)s, %(size)d bytes)" % attachment)
        click.echo("--- text")
        click.echo(result["text"] or "(empty)")
        if result["trimmed"]:
            click.echo("--- trimmed: %d lines" % len(result["trimmed"].splitlines()))
