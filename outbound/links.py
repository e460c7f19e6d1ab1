"""Links inside emails: the portal page of a thread and signed links to attachments.

Attachments too big to attach (or not images) are linked. Pet parents have no portal
sign-in, so the link itself is the key: an itsdangerous token that names what it is for
(its salt, so no other signed value of Pawpost passes for it), the attachment id and when
it was made. The portal serves `/attachments/<id>/<token>` while `verify_attachment_token`
accepts it: under this deployment's secret, for this attachment, younger than 30 days.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from pawpost.settings import Settings
from threads.types import utcnow

ATTACHMENT_LINK_PURPOSE = "pawpost.attachment-link"
ATTACHMENT_LINK_LIFETIME = timedelta(days=30)


def thread_url(settings: Settings, thread_id: int) -> str:
    return f"{settings.public_url}/threads/{thread_id}"


def webhook_endpoint_url(settings: Settings, endpoint_id: int) -> str:
    return f"{settings.public_url}/settings/webhooks/{endpoint_id}"


def invite_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/invite/{token}"


def password_reset_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/reset/{token}"


PARENT_LINK_PURPOSE = "pawpost.parent-link"


def _serializer(secret_key: str, now: datetime, purpose: str = ATTACHMENT_LINK_PURPOSE) -> URLSafeTimedSerializer:
    """Signs and checks at `now` (the caller's clock, so tests can move time)."""
    moment = int(now.timestamp())

    class SignerAtNow(TimestampSigner):
        def get_timestamp(self) -> int:
            return moment

    return URLSafeTimedSerializer(
        secret_key,
        salt=purpose,
        signer=SignerAtNow,
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def attachment_token(secret_key: str, attachment_id: int, *, now: datetime | None = None) -> str:
    return _serializer(secret_key, now or utcnow()).dumps(attachment_id)


def verify_attachment_token(secret_key: str, attachment_id: int, token: str, *, now: datetime | None = None) -> bool:
    """True for a token made by `attachment_token` for this id, within its lifetime."""
    try:
        signed_id = _serializer(secret_key, now or utcnow()).loads(
            token, max_age=int(ATTACHMENT_LINK_LIFETIME.total_seconds())
        )
    except BadSignature:  # a forgery, another purpose's token, or an expired link
        return False
    return signed_id == attachment_id


def attachment_url(settings: Settings, attachment_id: int, *, now: datetime | None = None) -> str:
    token = attachment_token(settings.secret_key, attachment_id, now=now)
    return f"{settings.public_url}/attachments/{attachment_id}/{token}"


def parent_token(secret_key: str, contact_id: int, key: str, *, now: datetime | None = None) -> str:
    """The key of a parent link: the contact and their link key (threads.parent_links), signed now."""
    return _serializer(secret_key, now or utcnow(), PARENT_LINK_PURPOSE).dumps([contact_id, key])


def read_parent_token(secret_key: str, token: str) -> tuple[int, str, datetime] | None:
    """(contact id, link key, signing time) of a well-signed parent token, else None.

    No age limit here: a link lives 30 days after its last *use*, which the database knows.
    """
    if len(token) > 300:
        return None
    try:
        value, signed_at = _serializer(secret_key, utcnow(), PARENT_LINK_PURPOSE).loads(token, return_timestamp=True)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        return None
    return value[0], value[1], signed_at


def parent_url(settings: Settings, contact_id: int, key: str, *, now: datetime | None = None) -> str:
    return f"{settings.public_url}/p/{parent_token(settings.secret_key, contact_id, key, now=now)}"


def parent_choice_url(settings: Settings, contact_id: int, key: str, *, now: datetime | None = None) -> str:
    return f"{parent_url(settings, contact_id, key, now=now)}/emails"


UNSUBSCRIBE_PREFIX = "unsubscribe+"


def _unsubscribe_mac(secret_key: str, contact_id: int) -> str:
    digest = hmac.new(secret_key.encode(), f"pawpost.unsubscribe:{contact_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def unsubscribe_address(secret_key: str, contact_id: int, reply_domain: str) -> str:
    """`unsubscribe+<contact>.<mac>@<reply domain>`: the List-Unsubscribe mailto, under 64
    characters of local part and lower-case (mail systems do not keep the case)."""
    return f"{UNSUBSCRIBE_PREFIX}{contact_id}.{_unsubscribe_mac(secret_key, contact_id)}@{reply_domain}"


def parse_unsubscribe_address(address: str, reply_domain: str, secret_key: str) -> int | None:
    """The contact an unsubscribe address names when its mac is right, else None."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    if domain != reply_domain.lower() or not local.startswith(UNSUBSCRIBE_PREFIX):
        return None
    contact, _, mac = local[len(UNSUBSCRIBE_PREFIX) :].partition(".")
    if not contact.isdigit() or len(contact) > 12:
        return None
    if not hmac.compare_digest(_unsubscribe_mac(secret_key, int(contact)), mac):
        return None
    return int(contact)


def unsubscribe_url(settings: Settings, contact_id: int, key: str, *, now: datetime | None = None) -> str:
    return f"{parent_url(settings, contact_id, key, now=now)}/unsubscribe"
