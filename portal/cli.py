"""`pawpost web` (serve the portal), `pawpost live` (its stream) and `pawpost staff` (sign-ins)."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from clikit import business_by_slug, emit, load_settings, session_scope
from outbound.accounts import queue_invitation, send_soon
from outbound.links import invite_url
from outbound.queue import configure_queue
from portal.server import serve
from threads.accounts import StaffProblems, invite_staff, issue_token, set_active, set_password_hash
from threads.audit import record
from threads.directory import find_staff_by_email, normalise_email
from threads.models import Business, Staff
from threads.passwords import WeakPassword, hash_password
from threads.types import utcnow

ROLES = ("basic", "senior", "admin")


@click.command("web")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: 2 per CPU, 2 to 8).")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Threads per worker.")
@click.pass_context
def web_command(ctx: click.Context, workers: int | None, threads: int) -> None:
    """Serve the web portal on PAWPOST_WEB_LISTEN with gunicorn; SIGTERM stops it gracefully."""
    settings = load_settings(ctx).with_secret_key()
    serve(settings, workers=workers, threads=threads)


@click.command("live")
@click.pass_context
def live_command(ctx: click.Context) -> None:
    """Serve the live stream (`/live`) on PAWPOST_LIVE_LISTEN; route `/live` here from your proxy."""
    from portal.live_server import serve_live

    serve_live(load_settings(ctx))


@click.group("staff")
def staff_command() -> None:
    """Staff sign-ins: add, set a password, list, deactivate."""


def _business(session: Session, slug: str | None) -> Business:
    if slug is not None:
        return business_by_slug(session, slug)
    businesses = session.scalars(select(Business).order_by(Business.id)).all()
    if len(businesses) != 1:
        raise click.ClickException("say which business with --business SLUG" if businesses else "no business yet; run `pawpost import` first")
    return businesses[0]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _hash(password: str) -> str:
    try:
        return hash_password(password)
    except WeakPassword as error:
        raise click.ClickException(str(error)) from None


def _one_staff(session: Session, email: str, slug: str | None) -> Staff:
    business = _business(session, slug) if slug is not None else None
    query = select(Staff).where(Staff.email == normalise_email(email))
    if business is not None:
        query = query.where(Staff.business_id == business.id)
    found = session.scalars(query).all()
    if not found:
        raise click.ClickException(f"no staff member with email {email}")
    if len(found) > 1:
        raise click.ClickException(f"{email} works for several businesses; say which with --business SLUG")
    return found[0]


business_option = click.option("--business", "slug", help="The business's slug (needed when there are several).")
stdin_option = click.option("--password-stdin", "from_stdin", is_flag=True, help="Read the password from standard input.")


@staff_command.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Full name, as parents and colleagues see it.")
@click.option("--role", type=click.Choice(ROLES), default="basic", show_default=True)
@business_option
@stdin_option
@click.pass_context
def staff_add(ctx: click.Context, email: str, name: str, role: str, slug: str | None, from_stdin: bool) -> None:
    """Add a staff member who can sign in to the portal."""
    settings = load_settings(ctx)
    address = normalise_email(email)
    if "@" not in address:
        raise click.ClickException(f"{email!r} is not an email address")
    password_hash = _hash(_password(from_stdin))
    with session_scope(settings) as session:
        business = _business(session, slug)
        if find_staff_by_email(session, business.id, address) is not None:
            raise click.ClickException(f"{address} already works for {business.slug}; use set-password")
        staff = Staff(business_id=business.id, name=name, email=address, role=role, password_hash=password_hash, active=True)
        session.add(staff)
        session.flush()
        record(session, business.id, None, "staff.create", f"Added {name} <{address}> as {role}", utcnow(), staff_id=staff.id,
               after={"name": name, "email": address, "role": role, "active": True, "password": "set at the command line"})
        data = {"id": staff.id, "email": address, "name": name, "role": role, "business": business.slug}
    emit(data, False, f"added {role} {name} <{address}> to {data['business']}")


@staff_command.command("invite")
@click.argument("email")
@click.option("--name", required=True, help="Full name, as parents and colleagues see it.")
@click.option("--role", type=click.Choice(ROLES), default="basic", show_default=True)
@business_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def staff_invite(ctx: click.Context, email: str, name: str, role: str, slug: str | None, as_json: bool) -> None:
    """Invite a staff member: email them a single-use link (7 days) to choose a password, and print it."""
    settings = load_settings(ctx)
    now = utcnow()
    with session_scope(settings) as session:
        business = _business(session, slug)
        try:
            staff = invite_staff(session, business.id, name=name, email=email, role=role)
        except StaffProblems as error:
            raise click.ClickException("; ".join(f"{field}: {text}" for field, text in error.problems.items())) from None
        token_row, token = issue_token(session, staff, "invite", now)
        outbox_id = queue_invitation(session, settings, token_row, token, now)
        record(session, business.id, None, "staff.invite", f"Invited {staff.name} <{staff.email}> as {role}", now, staff_id=staff.id,
               after={"name": staff.name, "email": staff.email, "role": role, "link expires": token_row.expires_at})
        data = {"email": staff.email, "invite_url": invite_url(settings, token), "expires_at": token_row.expires_at.isoformat()}
    configure_queue(settings)
    send_soon([outbox_id])
    emit(data, as_json, f"invited {role} {name} <{data['email']}> to {business.slug}; the link (also emailed) works once until {data['expires_at']}:\n{data['invite_url']}")


@staff_command.command("set-password")
@click.argument("email")
@business_option
@stdin_option
@click.pass_context
def staff_set_password(ctx: click.Context, email: str, slug: str | None, from_stdin: bool) -> None:
    """Set a staff member's password; their open sessions end."""
    settings = load_settings(ctx)
    password_hash = _hash(_password(from_stdin))
    with session_scope(settings) as session:
        staff = _one_staff(session, email, slug)
        set_password_hash(session, staff, password_hash, utcnow())
        record(session, staff.business_id, None, "staff.password", f"Set a new password for {staff.name}", utcnow(), staff_id=staff.id)
        name = staff.email
    click.echo(f"password set for {name}")


@staff_command.command("deactivate")
@click.argument("email")
@business_option
@click.pass_context
def staff_deactivate(ctx: click.Context, email: str, slug: str | None) -> None:
    """Refuse this staff member's sign-ins from now on (their sessions end too)."""
    _set_active(ctx, email, slug, active=False)


@staff_command.command("activate")
@click.argument("email")
@business_option
@click.pass_context
def staff_activate(ctx: click.Context, email: str, slug: str | None) -> None:
    """Let a deactivated staff member sign in again."""
    _set_active(ctx, email, slug, active=True)


def _set_active(ctx: click.Context, email: str, slug: str | None, *, active: bool) -> None:
    with session_scope(load_settings(ctx)) as session:
        staff = _one_staff(session, email, slug)
        before = staff.active
        set_active(session, staff, active, utcnow())
        record(session, staff.business_id, None, "staff.activate" if active else "staff.deactivate",
               f"{'Reactivated' if active else 'Deactivated'} {staff.name}", utcnow(), staff_id=staff.id,
               before={"active": before}, after={"active": active})
    click.echo(f"{'activated' if active else 'deactivated'} {normalise_email(email)}")


@staff_command.command("list")
@business_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def staff_list(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List staff with their role and whether they can sign in."""
    with session_scope(load_settings(ctx)) as session:
        query = select(Staff, Business.slug).join(Business, Business.id == Staff.business_id).order_by(Business.slug, Staff.name)
        if slug is not None:
            query = query.where(Business.slug == slug)
        rows = [
            {"id": s.id, "business": b, "name": s.name, "email": s.email, "role": s.role, "active": s.active, "has_password": bool(s.password_hash)}
            for s, b in session.execute(query)
        ]
    human = "\n".join(
        f"{r['business']:<20} {r['role']:<6} {r['name']:<24} {r['email']:<32} {'active' if r['active'] else 'inactive'}{'' if r['has_password'] else ', no password'}"
        for r in rows
    )
    emit(rows, as_json, human or "no staff")
