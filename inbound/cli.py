"""`pawpost smtp` and `pawpost quarantine …`: the inbound side's operator commands."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from clikit import business_by_slug, emit, load_settings, session_scope
from inbound.ingest import notify_posted
from inbound.parse import UnparseableEmail, parse_email
from inbound.quarantine import QuarantineError, discard, quarantined_emails, release, sender_staff
from inbound.reply_text import extract_reply
from inbound.server import serve_forever
from outbound.queue import configure_queue
from threads.directory import find_staff_by_email
from threads.errors import AccessDenied, StaffAddress
from threads.models import Contact, InboundEmail, Staff, Thread
from threads.types import utcnow


@click.command("smtp")
@click.option("--drain-seconds", default=30.0, show_default=True, help="How long a stop waits for DATA in flight.")
@click.pass_context
def smtp_command(ctx: click.Context, drain_seconds: float) -> None:
    """Receive replies by SMTP on PAWPOST_SMTP_LISTEN until SIGTERM (then stop gracefully).

    Each email is stored and answered `250`; `pawpost worker` parses and posts it.
    """
    settings = load_settings(ctx).with_secret_key()
    configure_queue(settings)
    serve_forever(settings, drain_seconds=drain_seconds)


@click.group("quarantine")
def quarantine_command() -> None:
    """Review emails whose sender was not allowed on the thread."""


@quarantine_command.command("list")
@click.option("--business", "business_slug", help="Only this business (its id in the directory).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def quarantine_list(ctx: click.Context, business_slug: str | None, as_json: bool) -> None:
    """Quarantined emails, oldest first."""
    with session_scope(load_settings(ctx)) as session:
        business_id = business_by_slug(session, business_slug).id if business_slug else None
        rows = [_summary(e) for e in quarantined_emails(session, business_id, limit=1000)]
    human = "\n".join(
        f"{r['id']:>6}  {r['received_at'][:19]}  thread {r['thread_id'] or '-':<5} {r['sender'] or '-':<32} {r['reason'] or ''}"
        for r in rows
    )
    emit(rows, as_json, human or "nothing in quarantine")


@quarantine_command.command("show")
@click.argument("inbound_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def quarantine_show(ctx: click.Context, inbound_id: int, as_json: bool) -> None:
    """One stored email: why it was held, its visible text, and the family's contacts."""
    with session_scope(load_settings(ctx)) as session:
        inbound_email = _inbound(session, inbound_id)
        data = _summary(inbound_email)
        try:
            parsed = parse_email(inbound_email.raw)
            reply = extract_reply(parsed.text, parsed.html, sender=parsed.sender_name or parsed.sender_address)
            data["text"] = reply.visible
            data["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in parsed.attachments]
        except UnparseableEmail:
            data["text"], data["attachments"] = None, []
        thread = session.get(Thread, inbound_email.thread_id) if inbound_email.thread_id else None
        data["family"] = thread.family.name if thread else None
        staff = sender_staff(session, inbound_email, _sender_address(inbound_email)) if thread else None
        data["staff_sender"] = {"id": staff.id, "name": staff.name} if staff else None
        data["contacts"] = (
            [{"id": c.id, "name": c.name, "emails": [a.email for a in c.addresses]} for c in thread.family.contacts] if thread else []
        )
    human = "\n".join(
        [
            f"inbound email {data['id']} ({data['outcome']}), received {data['received_at']}",
            f"from: {data['sender']}   subject: {data['subject']}",
            f"family: {data['family'] or '-'}   reason: {data['reason'] or '-'}",
            "contacts: " + (", ".join(f"{c['id']} {c['name']} <{', '.join(c['emails'])}>" for c in data["contacts"]) or "-"),
            *(
                [f"sent by staff: {data['staff_sender']['name']} (release it as them with --as-staff)"]
                if data["staff_sender"]
                else []
            ),
            "",
            data["text"] if data["text"] is not None else "(unreadable)",
        ]
    )
    emit(data, as_json, human)


@quarantine_command.command("release")
@click.argument("inbound_id", type=int)
@click.option("--contact", "contact_id", type=int, help="Post as this contact (id, see `show`).")
@click.option("--as-staff", is_flag=True, help="Post as the staff member whose own address sent it (see `show`).")
@click.option("--add-alias", is_flag=True, help="Remember the sender's address as this contact's (never a staff address).")
@click.option("--by", "reviewer_email", help="Record this staff member (email) as the reviewer.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def quarantine_release(
    ctx: click.Context,
    inbound_id: int,
    contact_id: int | None,
    as_staff: bool,
    add_alias: bool,
    reviewer_email: str | None,
    as_json: bool,
) -> None:
    """Post a quarantined email into its thread as one of the family's contacts, or as its staff sender."""
    if (contact_id is None) == (not as_staff):
        raise click.UsageError("give exactly one of --contact ID and --as-staff")
    settings = load_settings(ctx)
    with session_scope(settings) as session:
        inbound_email = _inbound(session, inbound_id)
        author: Contact | Staff | None
        if as_staff:
            author = sender_staff(session, inbound_email, _sender_address(inbound_email))
            if author is None:
                raise click.ClickException(f"inbound email {inbound_id} was not sent by a staff member of its business")
        else:
            author = session.get(Contact, contact_id)
            if author is None:
                raise click.ClickException(f"no contact {contact_id}")
        reviewer = _reviewer(session, inbound_email, reviewer_email)
        try:
            message = release(session, inbound_email, author, add_alias=add_alias, reviewer=reviewer, now=utcnow())
        except (QuarantineError, AccessDenied, StaffAddress) as error:
            raise click.ClickException(str(error)) from None
        result = {
            "inbound_id": inbound_id,
            "message_id": message.id,
            "thread_id": message.thread_id,
            "author": {"kind": author.person.kind, "id": author.id, "name": author.name},
            "alias_added": add_alias,
        }
        name = author.name
    configure_queue(settings)
    notify_posted(message.id)
    emit(result, as_json, f"released inbound email {inbound_id} as message {message.id} by {name}")


def _sender_address(inbound_email: InboundEmail) -> str | None:
    try:
        return parse_email(inbound_email.raw).sender_address
    except UnparseableEmail:
        return None


@quarantine_command.command("discard")
@click.argument("inbound_id", type=int)
@click.option("--by", "reviewer_email", help="Record this staff member (email) as the reviewer.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def quarantine_discard(ctx: click.Context, inbound_id: int, reviewer_email: str | None, as_json: bool) -> None:
    """Drop a quarantined email (it stays stored, marked discarded)."""
    with session_scope(load_settings(ctx)) as session:
        inbound_email = _inbound(session, inbound_id)
        reviewer = _reviewer(session, inbound_email, reviewer_email)
        try:
            discard(session, inbound_email, reviewer=reviewer, now=utcnow())
        except (QuarantineError, AccessDenied) as error:
            raise click.ClickException(str(error)) from None
    emit({"inbound_id": inbound_id, "outcome": "discarded"}, as_json, f"discarded inbound email {inbound_id}")


def _inbound(session: Session, inbound_id: int) -> InboundEmail:
    inbound_email = session.get(InboundEmail, inbound_id)
    if inbound_email is None:
        raise click.ClickException(f"no inbound email {inbound_id}")
    return inbound_email


def _reviewer(session: Session, inbound_email: InboundEmail, email: str | None) -> Staff | None:
    if not email:
        return None
    staff = find_staff_by_email(session, inbound_email.business_id, email) if inbound_email.business_id else None
    if staff is None:
        raise click.ClickException(f"no staff member {email} in this email's business")
    return staff


def _summary(inbound_email: InboundEmail) -> dict[str, object]:
    return {
        "id": inbound_email.id,
        "received_at": inbound_email.received_at.isoformat(),
        "thread_id": inbound_email.thread_id,
        "sender": inbound_email.sender,
        "subject": inbound_email.subject,
        "outcome": inbound_email.outcome,
        "reason": inbound_email.reason,
        "size": inbound_email.size,
    }
