"""Webhook signing secrets, sealed at rest.

Pawpost must hold each endpoint's secret to sign (HMAC) its deliveries, so it cannot keep a
hash as it does for API keys. It keeps the secret encrypted instead (Fernet: AES-128-CBC and
HMAC-SHA256, authenticated) under a key derived with HKDF from the deployment's
PAWPOST_SECRET_KEY, which lives in the environment, never in the database: a dump of the
database alone does not let anyone sign as Pawpost. The derivation names its purpose, so
this key is none of the other keys made from the same secret (sessions, links).
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"pawpost.webhook-signing-secret.v1"


class SealBroken(Exception):
    """A sealed secret does not open under this deployment's key (PAWPOST_SECRET_KEY changed,
    or the stored value was altered)."""


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, secret: str) -> str:
    """`secret` encrypted and authenticated under `secret_key` (a different text each time)."""
    return _fernet(secret_key).encrypt(secret.encode()).decode("ascii")


def unseal(secret_key: str, sealed: str) -> str:
    """The secret `seal` was given, or `SealBroken`."""
    try:
        return _fernet(secret_key).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError):
        raise SealBroken("the webhook signing secret does not open under this PAWPOST_SECRET_KEY") from None
