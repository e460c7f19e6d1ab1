"""Webhook signing secrets sealed at rest; an outbox kind for "your endpoint was disabled".

Revision ID: 0016d_webhook_secret_encrypted
Revises: 0015_merge

- `webhook_endpoints.secret` (clear text) becomes `sealed_secret`: Fernet under a key that
  HKDF derives from PAWPOST_SECRET_KEY (threads/sealing.py). Existing rows are sealed HERE,
  in the migration's transaction, so no clear secret outlives the upgrade (a dump or backup
  taken afterwards cannot sign) and the code reads one format only. The key comes from the
  caller (`pawpost db upgrade`, `pawpost up`: the same settings the workers sign with,
  through `threads.migrate.upgrade(..., secret_key=...)`), and only when there are rows to
  seal: a database without endpoints (a fresh install, the tests) needs none; a database
  with endpoints and no key refuses to upgrade with a clear error rather than guessing.
- `outbound_emails.kind` also allows `webhook_disabled` (the admins' email).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

revision = "0016d_webhook_secret_encrypted"
down_revision = "0015_merge"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('digest', 'alert', 'escalation', 'invite', 'password_reset')"
NEW_KINDS = "kind IN ('digest', 'alert', 'escalation', 'invite', 'password_reset', 'webhook_disabled')"
# As threads/sealing.py derives it (a migration is a snapshot: it imports no app module).
PURPOSE = b"pawpost.webhook-signing-secret.v1"

endpoints = sa.table("webhook_endpoints", sa.column("id", sa.Integer), sa.column("secret", sa.String), sa.column("sealed_secret", sa.String))


def _fernet():  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    provider: Callable[[], str] | None = context.config.attributes.get("secret_key")
    if provider is None:
        raise RuntimeError(
            "webhook endpoints exist and their secrets must be sealed with PAWPOST_SECRET_KEY: "
            "run `pawpost db upgrade` with the same PAWPOST_SECRET_KEY as the workers"
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(provider().encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(endpoints.c.id, endpoints.c.secret)).all()
    # Before any change: without the key, the upgrade stops with nothing altered.
    fernet = _fernet() if rows else None
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_secret", sa.String(length=400), nullable=True))
    if fernet is not None:
        for endpoint_id, secret in rows:
            sealed = fernet.encrypt(secret.encode()).decode("ascii")
            bind.execute(endpoints.update().where(endpoints.c.id == endpoint_id).values(sealed_secret=sealed))
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("sealed_secret", existing_type=sa.String(length=400), nullable=False)
        batch_op.drop_column("secret")
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch_op.create_check_constraint("kind", NEW_KINDS)


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(endpoints.c.id, endpoints.c.sealed_secret)).all()
    fernet = _fernet() if rows else None
    op.execute("DELETE FROM outbound_emails WHERE kind = 'webhook_disabled'")
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch_op.create_check_constraint("kind", OLD_KINDS)
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=100), nullable=True))
    if fernet is not None:
        for endpoint_id, sealed in rows:
            secret = fernet.decrypt(sealed.encode()).decode()
            bind.execute(endpoints.update().where(endpoints.c.id == endpoint_id).values(secret=secret))
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_column("sealed_secret")
