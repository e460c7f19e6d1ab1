"""API keys: create (shown once), authenticate, list and revoke, for one business at a time.

A key is `pp_` followed by 32 random bytes (base64url): far too much entropy to guess, so a
plain SHA-256 finds its row and is useless to whoever reads the table (a slow password hash
would only cost time on every request). The first characters stay visible as `prefix`, so
lists and logs can name a key without revealing it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from threads.accounts import token_hash
from threads.errors import FieldProblems, PawpostError
from threads.models import API_SCOPES, ApiKey

KEY_PREFIX = "pp_"
# Visible characters: "pp_" and 8 of the random part.
PREFIX_LENGTH = 11
# How stale "last used" may get before a request writes it again (one write a minute per
# key, not one per request).
LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiKeyProblems(FieldProblems):
    """A new key was refused; `problems` maps each field (name, scopes) to what is wrong."""


class UnknownApiKey(PawpostError):
    """No key of this business has this id."""


def validate_api_key_fields(name: str, scopes: Iterable[str]) -> dict[str, str]:
    """What is wrong with a new key's name and scopes, by field (empty when nothing)."""
    problems: dict[str, str] = {}
    if not name.strip():
        problems["name"] = "give the key a name that says who uses it"
    elif len(name.strip()) > 100:
        problems["name"] = "at most 100 characters"
    chosen = list(scopes)
    unknown = sorted(set(chosen) - set(API_SCOPES))
    if unknown:
        problems["scopes"] = f"unknown scope(s): {', '.join(unknown)}; choose from {', '.join(API_SCOPES)}"
    elif not chosen:
        problems["scopes"] = "choose at least one scope"
    return problems


def create_api_key(session: Session, business_id: int, *, name: str, scopes: Iterable[str], now: datetime) -> tuple[ApiKey, str]:
    """A new key for the business and its secret, which is never stored and shown only now."""
    chosen = list(dict.fromkeys(scopes))
    problems = validate_api_key_fields(name, chosen)
    if problems:
        raise ApiKeyProblems(problems)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        business_id=business_id,
        name=name.strip(),
        prefix=secret[:PREFIX_LENGTH],
        key_hash=token_hash(secret),
        scopes=" ".join(scope for scope in API_SCOPES if scope in chosen),
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, secret


def authenticate_api_key(session: Session, secret: str, now: datetime) -> ApiKey | None:
    """The live key this secret belongs to (its last use noted), or None: unknown or revoked."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == token_hash(secret)))
    if key is None or key.revoked_at is not None:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_GRANULARITY:
        key.last_used_at = now
        session.flush()
    return key


def business_api_keys(session: Session, business_id: int) -> list[ApiKey]:
    """Every key of the business, live ones first, newest first."""
    query = select(ApiKey).where(ApiKey.business_id == business_id)
    return list(session.scalars(query.order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))


def revoke_api_key(session: Session, business_id: int | None, key_id: int, now: datetime) -> ApiKey:
    """Stop a key from working (it stays listed); `business_id` None: any business (operator)."""
    query = select(ApiKey).where(ApiKey.id == key_id)
    if business_id is not None:
        query = query.where(ApiKey.business_id == business_id)
    key = session.scalar(query)
    if key is None:
        raise UnknownApiKey(f"no API key {key_id}")
    if key.revoked_at is None:
        session.execute(update(ApiKey).where(ApiKey.id == key.id, ApiKey.revoked_at.is_(None)).values(revoked_at=now))
        session.refresh(key)
    return key
