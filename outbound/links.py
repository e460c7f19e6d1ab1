"""Links inside emails: the portal page of a thread and signed links to attachments.

Attachments too big to attach (or not images) are linked. Pet parents have no portal
sign-in, so the link carries an HMAC of the attachment id under the deployment's secret;
the portal serves `/attachments/<id>/<token>` after `verify_attachment_token`.
"""

from __future__ import annotations

import hashlib
import hmac

from pawpost.settings import Settings


def thread_url(settings: Settings, thread_id: int) -> str:
    return f"{settings.public_url}/threads/{thread_id}"


def attachment_token(secret_key: str, attachment_id: int) -> str:
    digest = hmac.new(secret_key.encode(), f"attachment:{attachment_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def verify_attachment_token(secret_key: str, attachment_id: int, token: str) -> bool:
    return hmac.compare_digest(attachment_token(secret_key, attachment_id), token)


def attachment_url(settings: Settings, attachment_id: int) -> str:
    return f"{settings.public_url}/attachments/{attachment_id}/{attachment_token(settings.secret_key, attachment_id)}"
