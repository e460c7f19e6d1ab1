"""The `pawpost` console command: the operator's entry point to every process and listing."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import selectinload

from clikit import business_by_slug, emit, load_settings, session_scope
from inbound.cli import quarantine_command, smtp_command
from inbound.cli_parse import parse_command
import inbound.tasks  # noqa: F401  (every pawpost process, the worker included, knows inbound's tasks)
from outbound.cli import worker_command
from pawpost.settings import ConfigError, Settings
from portal.api_cli import apikeys_command
from portal.cli import live_command, staff_command, web_command
from threads import migrate
from threads.addresses import reply_address, rotate_reply_token
from threads.bounces import unbounce
from threads.db import make_engine, make_session_factory
from threads.demo import describe_demo, seed_demo
from threads.errors import DirectoryError
from threads.audit import record
from threads.directory import normalise_email
from threads.importing import import_directory, record_import
from threads.models import Business, Message, Thread
from threads.schedule import business_today
from threads.types import utcnow


class PawpostGroup(click.Group):
    """Turns configuration and connection faults into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            raise click.ClickException(f"configuration: {error}") from None
        except OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise click.ClickException(f"database unreachable or not migrated: {reason}") from None


@click.group(cls=PawpostGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Pawpost: one email thread per client family, for the whole team."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every connection at INFO; operators only need its warnings.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the schema to the newest version."""
    settings = load_settings(ctx)
    # The key is asked for only when a migration has rows to seal with it.
    migrate.upgrade(settings.database_url, secret_key=lambda: settings.with_secret_key().secret_key)
    click.echo(f"database at revision {migrate.current_revision(settings.database_url)}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def demo(ctx: click.Context, as_json: bool) -> None:
    """Seed (or refresh) the demo business and print its sign-ins and reply addresses.

    Like `pawpost up`, a development command: without PAWPOST_SECRET_KEY it uses the
    development key under the data directory, so the passwords it prints are the ones
    `pawpost up` accepts.
    """
    settings = load_settings(ctx).with_secret_key(development=True)
    migrate.upgrade(settings.database_url, secret_key=lambda: settings.secret_key)
    now = utcnow()
    with session_scope(settings) as session:
        business_id = seed_demo(session, now=now, secret_key=settings.secret_key, mail_domain=settings.mail_domain)
    with session_scope(settings) as session:
        business = session.get(Business, business_id)
        assert business is not None
        data = describe_demo(
            session,
            business_id,
            today=business_today(business, now),
            secret_key=settings.secret_key,
            reply_domain=settings.reply_domain,
        )
    emit(data, as_json, _describe_demo_text(data, settings))


def _describe_demo_text(data: dict[str, Any], settings: Settings) -> str:
    lines = [f"Demo business: {data['business']['name']} ({data['business']['timezone']})", "", "Sign-ins:"]
    lines += [f"  {s['role']:<6} {s['name']:<14} {s['email']:<26} password: {s['password']}" for s in data["staff"]]
    lines += ["", "Families (reply address → scheduled staff today):"]
    for family in data["families"]:
        staff = ", ".join(family["scheduled_staff_today"]) or "-"
        lines.append(f"  {family['name']:<18} {family['reply_address']}  [{staff}]")
    return "\n".join(lines)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def import_command(ctx: click.Context, file: Path, dry_run: bool, as_json: bool) -> None:
    """Upsert a business directory (staff, families, contacts, pets, appointments) from JSON."""
    settings = load_settings(ctx)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{file}: not valid JSON: {error}") from None
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            with session.begin():
                try:
                    report = import_directory(session, data, mail_domain=settings.mail_domain)
                except DirectoryError as error:
                    session.rollback()
                    _fail_import(file, error.problems, as_json)
                if dry_run:
                    session.rollback()
                else:
                    record_import(session, report, utcnow(), source=f"{file.name} (pawpost import)")
    finally:
        engine.dispose()
    result = {"dry_run": dry_run, "business_id": report.business_id, "created": report.created, "updated": report.updated}
    human = ("would import" if dry_run else "imported") + f" {file}: created {report.created or 'nothing'}, updated {report.updated or 'nothing'}"
    emit(result, as_json, human)


def _fail_import(file: Path, problems: list[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "errors": problems}, indent=2))
    else:
        click.echo(f"{file}: {len(problems)} problem(s), nothing was imported:", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
    sys.exit(1)


@main.group("threads", invoke_without_command=True)
@click.option("--business", "business_slug", help="Only this business (its id in the directory).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def threads_command(ctx: click.Context, business_slug: str | None, as_json: bool) -> None:
    """List threads, newest activity first (or `rotate-address THREAD_ID`)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(ctx)
    with session_scope(settings) as session:
        query = (
            select(Thread)
            .options(selectinload(Thread.family))
            .order_by(Thread.last_message_at.desc().nulls_last(), Thread.id)
        )
        if business_slug:
            query = query.where(Thread.business_id == business_by_slug(session, business_slug).id)
        rows = [
            {
                "thread_id": t.id,
                "family": t.family.name,
                "reply_address": reply_address(t, settings.reply_domain),
                "last_message_at": t.last_message_at.isoformat() if t.last_message_at else None,
                "message_count": t.message_count,
            }
            for t in session.scalars(query)
        ]
    human = "\n".join(
        f"{r['thread_id']:>6}  {r['family']:<24} {r['message_count']:>5} msg  {r['last_message_at'] or '-':<32} {r['reply_address']}"
        for r in rows
    )
    emit(rows, as_json, human or "no threads")


@threads_command.command("rotate-address")
@click.argument("thread_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def rotate_address_command(ctx: click.Context, thread_id: int, as_json: bool) -> None:
    """Give THREAD_ID a new reply address and shut the old one out (after a leak).

    The old address, and replies that only name the thread's earlier emails, are refused
    from now on; mail accepted before keeps its thread. Prints the new address.
    """
    settings = load_settings(ctx)
    with session_scope(settings) as session:
        thread = session.get(Thread, thread_id)
        if thread is None:
            raise click.ClickException(f"no thread {thread_id}")
        rotate_reply_token(session, thread)
        record(session, thread.business_id, None, "thread.reply_address.rotate", f"Rotated the reply address of {thread.family.name}'s thread",
               utcnow(), family_id=thread.family_id)
        row = {
            "thread_id": thread.id,
            "reply_address": reply_address(thread, settings.reply_domain),
            "rotated_at": thread.rotated_at.isoformat() if thread.rotated_at else None,
        }
    emit(row, as_json, row["reply_address"])


@main.group("contacts")
def contacts_command() -> None:
    """Contacts' addresses."""


@contacts_command.command("unbounce")
@click.argument("address")
@click.option("--business", "business_slug", help="Only this business (its slug); default: every business.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def unbounce_command(ctx: click.Context, address: str, business_slug: str | None, as_json: bool) -> None:
    """Clear the bounce flag of ADDRESS, so its digests start again."""
    settings = load_settings(ctx)
    with session_scope(settings) as session:
        if business_slug:
            business_by_slug(session, business_slug)
        cleared = unbounce(session, address, business_slug)
        now = utcnow()
        for done in cleared:
            for family_id, family_name in done.families.items():
                record(session, done.business_id, None, "family.address.clear_bounce", f"{family_name}: cleared the bounce flag of {normalise_email(address)}",
                       now, family_id=family_id, before={"bouncing": True}, after={"bouncing": False})
    if not cleared:
        raise click.ClickException(f"{address} is not marked bouncing" + (f" in {business_slug}" if business_slug else ""))
    rows = [{"business": done.slug, "address": address.strip().lower(), "cleared": done.cleared} for done in cleared]
    emit(rows, as_json, "\n".join(f"{r['address']}: bounce flag cleared in {r['business']}" for r in rows))


@main.command("messages")
@click.argument("thread_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def messages_command(ctx: click.Context, thread_id: int, as_json: bool) -> None:
    """List a thread's messages, oldest first."""
    settings = load_settings(ctx)
    with session_scope(settings) as session:
        if session.get(Thread, thread_id) is None:
            raise click.ClickException(f"no thread {thread_id}")
        messages = session.scalars(
            select(Message)
            .options(selectinload(Message.attachments), selectinload(Message.staff), selectinload(Message.contact))
            .where(Message.thread_id == thread_id)
            .order_by(Message.id)
        ).all()
        rows = [
            {
                "id": m.id,
                "author_type": m.author_type,
                "author": m.author_name,
                "source": m.source,
                "text": m.body,
                "created_at": m.created_at.isoformat(),
                "attachments": [
                    {"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in m.attachments
                ],
            }
            for m in messages
        ]
    human = "\n\n".join(f"[{r['created_at']}] {r['author']} ({r['author_type']}, {r['source']}):\n{r['text']}" for r in rows)
    emit(rows, as_json, human or "no messages")


main.add_command(smtp_command)
main.add_command(parse_command)
main.add_command(quarantine_command)
main.add_command(worker_command)
main.add_command(web_command)
main.add_command(live_command)
main.add_command(apikeys_command)
main.add_command(staff_command)


@main.command("up")
@click.pass_context
def up_command(ctx: click.Context) -> None:
    """Run everything in one process on the embedded default: SMTP, worker and portal."""
    from pawpost.up import run_up

    run_up(load_settings(ctx).with_secret_key(development=True))


@main.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", is_flag=True, help="Print nothing; the exit status says it (for health checks).")
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool, quiet: bool) -> None:
    """Check the configuration and that the database, queue and relay are reachable."""
    from pawpost.doctor import run_checks

    checks = run_checks(load_settings(ctx))
    failed = any(c.status == "fail" for c in checks)
    if not quiet:
        rows = [{"check": c.name, "status": c.status, "detail": c.detail} for c in checks]
        human = "\n".join(f"[{c.status:<4}] {c.name}: {c.detail}" for c in checks)
        emit({"ok": not failed, "checks": rows}, as_json, human)
    ctx.exit(1 if failed else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
