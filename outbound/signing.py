"""DKIM signatures on outgoing mail (dkimpy), when the operator gives Pawpost a key.

RFC 8058's one-click unsubscribe counts only when a DKIM signature covers the
List-Unsubscribe headers. With PAWPOST_DKIM_SELECTOR, PAWPOST_DKIM_DOMAIN and
PAWPOST_DKIM_KEY_FILE set, every email is signed as it is rendered into the outbox (the
bytes stored are the bytes sent); without them, the relay must sign (README).
`pawpost doctor` prints the TXT record to publish (`dns_record`).
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization

from pawpost.settings import Settings

# What a signature covers: the addressing, the thread headers and the RFC 2369/8058 list
# headers. A header named here but absent is still signed as absent (no one can add it).
SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to", b"references",
    b"list-unsubscribe", b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type",
    b"auto-submitted",
)


@cache
def _private_key(path: Path) -> bytes:
    return path.read_bytes()


def sign(settings: Settings, raw: bytes) -> bytes:
    """The email with a DKIM-Signature header on top, or unchanged without a key configured."""
    if not (settings.dkim_selector and settings.dkim_domain and settings.dkim_key_file):
        return raw
    signature = dkim.sign(
        raw,
        settings.dkim_selector.encode(),
        settings.dkim_domain.encode(),
        _private_key(settings.dkim_key_file),
        include_headers=list(SIGNED_HEADERS),
        canonicalize=(b"relaxed", b"relaxed"),
    )
    return signature + raw


def dns_record(settings: Settings) -> tuple[str, str] | None:
    """(name, value) of the TXT record receivers look the public key up in; None without a key."""
    if not (settings.dkim_selector and settings.dkim_domain and settings.dkim_key_file):
        return None
    key = serialization.load_pem_private_key(_private_key(settings.dkim_key_file), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kind = "ed25519" if "ed25519" in type(key).__name__.lower() else "rsa"
    if kind == "ed25519":
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return (
        f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}",
        f"v=DKIM1; k={kind}; p={base64.b64encode(public).decode('ascii')}",
    )
