"""`pawpost apikeys`: create, list and revoke a business's API keys from the shell."""

from __future__ import annotations

import click
from sqlalchemy import select

from clikit import business_by_slug, emit, load_settings, session_scope
from threads.api_keys import ApiKeyProblems, UnknownApiKey, create_api_key, revoke_api_key
from threads.audit import record
from threads.models import API_SCOPES, ApiKey, Business
from threads.types import utcnow


@click.group("apikeys")
def apikeys_command() -> None:
    """API keys: create (the key is shown once), list, revoke."""


@apikeys_command.command("create")
@click.option("--business", "slug", required=True, help="The business's slug.")
@click.option("--name", required=True, help="Who uses the key (\"Booking sync\").")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(API_SCOPES), help="A scope to grant; repeat for several.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "name", "key", "scopes"}.')
@click.pass_context
def apikeys_create(ctx: click.Context, slug: str, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a key; it is printed once and never stored."""
    with session_scope(load_settings(ctx)) as session:
        business = business_by_slug(session, slug)
        try:
            key, secret = create_api_key(session, business.id, name=name, scopes=scopes, now=utcnow())
        except ApiKeyProblems as error:
            raise click.ClickException(str(error)) from None
        record(session, business.id, None, "apikey.create", f"Created API key {key.name} ({key.prefix}…)", utcnow())
        data = {"id": key.id, "name": key.name, "key": secret, "scopes": key.scope_list}
    emit(data, as_json, f"created API key {data['id']} {data['name']} ({' '.join(data['scopes'])})\n{secret}\nkeep it now: it is not shown again")


@apikeys_command.command("list")
@click.option("--business", "slug", help="Only this business's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def apikeys_list(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List keys by their visible prefix, with scopes, last use and revocation."""
    with session_scope(load_settings(ctx)) as session:
        query = select(ApiKey, Business.slug).join(Business, Business.id == ApiKey.business_id).order_by(Business.slug, ApiKey.id)
        if slug is not None:
            query = query.where(Business.slug == slug)
        rows = [
            {
                "id": k.id, "business": b, "name": k.name, "prefix": k.prefix, "scopes": k.scope_list,
                "created_at": k.created_at.isoformat(), "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k, b in session.execute(query)
        ]
    human = "\n".join(
        f"{r['id']:>4} {r['business']:<20} {r['prefix']}… {r['name']:<24} {' '.join(r['scopes']):<40} "
        f"{'revoked ' + r['revoked_at'] if r['revoked_at'] else 'last used ' + (r['last_used_at'] or 'never')}"
        for r in rows
    )
    emit(rows, as_json, human or "no API keys")


@apikeys_command.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def apikeys_revoke(ctx: click.Context, key_id: int) -> None:
    """Stop a key from working at once (it stays listed as revoked)."""
    with session_scope(load_settings(ctx)) as session:
        try:
            key = revoke_api_key(session, None, key_id, utcnow())
        except UnknownApiKey:
            raise click.ClickException(f"no API key {key_id}") from None
        record(session, key.business_id, None, "apikey.revoke", f"Revoked API key {key.name} ({key.prefix}…)", utcnow())
        label = f"{key.prefix}… {key.name}"
    click.echo(f"revoked {label}")
